"""The prompts notebook runs headless on the PRISM prompts shipped with the package (no ../shared/data needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_prompts.py"


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path, monkeypatch) -> None:
    # ``app.run()`` is what ``python notebooks/02_prompts.py`` calls; a failing cell raises.
    monkeypatch.setenv("PERSONA_LAB_RUNS", str(tmp_path))
    monkeypatch.setenv("MARIMO_SKIP_UPDATE_CHECK", "1")
    spec = importlib.util.spec_from_file_location("notebook_02_prompts", NOTEBOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run()
    # Default widgets: the shipped PRISM prompts, '?', 5 words, de-duplication, 22 TF-IDF topics.
    assert defs["loaded"]["source"].iloc[0] == "json_list" and len(defs["loaded"]) == 8011
    assert defs["funnel"]["count"].tolist() == [8011, 5007, 4652, 4620]
    assert len(defs["topics"]) == 22
    assert defs["split"]["split"].value_counts().to_dict() == {"train": 3000, "heldout": 868, "unused": 752}
    assert 0.0 < defs["silhouette"] < 1.0
    assert not (tmp_path / "notebook_prompts").exists()  # no LLM call without pressing the button
