"""The personas notebook passes ``marimo check`` and runs headless with its default widgets."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_personas.py"


def test_marimo_check_is_clean() -> None:
    marimo = Path(sys.executable).with_name("marimo")
    env = {**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1"}
    out = subprocess.run(
        [str(marimo), "check", str(NOTEBOOK)], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


@pytest.mark.slow
def test_notebook_runs_headless(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MARIMO_SKIP_UPDATE_CHECK", "1")
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("notebook_01_personas", NOTEBOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run()
    # default widgets: 1,000 personas from the embedded census model, seed 0
    table = defs["persona_table"]
    assert len(table) == 1000 and table["persona_id"].is_unique
    assert table["text"].str.startswith("age: ").all()
    assert defs["report"].n == 1000 and defs["report"].draws >= 1000
    assert not (tmp_path / "runs").exists()  # no LLM call without pressing the button
