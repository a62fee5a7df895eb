"""Every marimo notebook passes ``marimo check`` (each one's headless run is tested beside its stage)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))


def test_the_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS][:3] == ["00_backends.py", "01_personas.py", "02_prompts.py"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_marimo_check_is_clean(notebook: Path) -> None:
    marimo = Path(sys.executable).with_name("marimo")
    env = {**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1"}
    out = subprocess.run(
        [str(marimo), "check", str(notebook)], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr
