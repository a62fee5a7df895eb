"""The backends notebook runs headless (as a script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from persona_lab.llm import ResponseCache

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00_backends.py"


@pytest.mark.slow
@pytest.mark.local_model
def test_notebook_runs_headless_with_the_local_backend(tmp_path: Path) -> None:
    env = {**os.environ, "PERSONA_LAB_RUNS": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(NOTEBOOK)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    with ResponseCache(tmp_path / "notebook_backends") as cache:
        prov = cache.responses()
    # one call was made (the rerun was a replay) and its answer is in the run's cache
    assert len(prov) == 1 and prov.loc[0, "backend"] == "local" and prov.loc[0, "output_tokens"] > 0
