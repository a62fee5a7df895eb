"""The prompts notebook passes ``marimo check`` and runs headless on the PRISM prompts."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_prompts.py"


def test_marimo_check_is_clean() -> None:
    marimo = Path(sys.executable).with_name("marimo")
    env = {**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1"}
    out = subprocess.run(
        [str(marimo), "check", str(NOTEBOOK)], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


@pytest.mark.slow
def test_notebook_runs_headless(shared, tmp_path, monkeypatch) -> None:
    # ``app.run()`` is what ``python notebooks/02_prompts.py`` calls; a failing cell raises.
    monkeypatch.setenv("PERSONA_LAB_RUNS", str(tmp_path))
    monkeypatch.setenv("MARIMO_SKIP_UPDATE_CHECK", "1")
    spec = importlib.util.spec_from_file_location("notebook_02_prompts", NOTEBOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run()
    # Default widgets: the PRISM list, '?', 5 words, de-duplication, 22 TF-IDF topics.
    assert defs["funnel"]["count"].tolist() == [8011, 5007, 4652, 4620]
    assert len(defs["topics"]) == 22
    assert defs["split"]["split"].value_counts().to_dict() == {"train": 3000, "heldout": 868, "unused": 752}
    assert 0.0 < defs["silhouette"] < 1.0
    assert not (tmp_path / "notebook_prompts").exists()  # no LLM call without pressing the button
