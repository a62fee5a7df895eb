"""The personas notebook runs headless with its default widgets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_personas.py"


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
