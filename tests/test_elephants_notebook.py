"""The Pink Elephants notebook runs headless without calling a model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_pink_elephants.py"


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PERSONA_LAB_RUNS", str(tmp_path))
    monkeypatch.setenv("MARIMO_SKIP_UPDATE_CHECK", "1")
    spec = importlib.util.spec_from_file_location("notebook_07_pink_elephants", NOTEBOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run()
    # no run directory: the example pairs, the hand-written Nike/Adidas dialogue cut at its third exchange
    assert not defs["has_run"] and defs["pair_pick"].value == "example-1"
    dialogue = defs["shown_dialogues"].iloc[0]
    assert dialogue["cut_exchange"] == 2 and dialogue["cut_by"] == "string"
    assert dialogue["unwanted"] == "Many runners swear by Adidas's Boost foam in the Adizero line."
    # the results are the paper's four rows only, and nothing was called or cached
    assert defs["results"]["model"].tolist() == [
        "OpenHermes-7B",
        "OpenHermes-13B",
        "Llama-2-13B-Chat",
        "GPT-4",
    ]
    assert not (tmp_path / "notebook_elephants").exists()
