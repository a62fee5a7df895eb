"""The feedback notebook runs headless on a run directory, and degrades with a message when there is none."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from persona_lab.config import load_config, to_toml
from persona_lab.feedback import FEEDBACK_COLUMNS
from persona_lab.io import write_table

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_feedback.py"


def _run_notebook(monkeypatch, run_dir: Path, runs: Path) -> dict:
    monkeypatch.setenv("PERSONA_LAB_RUN_DIR", str(run_dir))
    monkeypatch.setenv("PERSONA_LAB_RUNS", str(runs))
    monkeypatch.setenv("MARIMO_SKIP_UPDATE_CHECK", "1")
    spec = importlib.util.spec_from_file_location("notebook_03_feedback", NOTEBOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run()  # what ``python notebooks/03_feedback.py`` calls; a failing cell raises
    return defs


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config("tiny", feedback={"n_personas": 2, "pairs_test_seen": 0, "pairs_test_unseen": 0})
    (run / "config.toml").write_text(to_toml(cfg), encoding="utf-8")
    personas = pd.DataFrame(
        {"persona_id": ["pA", "pB"], "age": [70, 25], "sex": ["Male", "Female"], "race": ["White alone"] * 2}
    )
    personas["text"] = ["age: 70\nsex: Male\n", "age: 25\nsex: Female\n"]
    prompts = pd.DataFrame(
        {"prompt_id": ["q1", "h1"], "text": ["Cars in cities?", "Compulsory voting?"], "kept": True}
    )
    prompts["split"] = ["train", "heldout"]
    rows = [
        {
            "persona_id": "pA",
            "prompt_id": "q1",
            "split": "train",
            "prompt": "Cars in cities?",
            "original": "A long balanced answer about cars in cities and their many trade-offs.",
            "critique": "EVALUATION: too long.\nSUGGESTIONS: cut.",
            "revision": "Fewer cars, calmer streets.",
            "chosen": "Fewer cars, calmer streets.",
            "rejected": "A long balanced answer about cars in cities and their many trade-offs.",
            "failure": "",
            "order_shown": "revision,original",
            "verification_choice": "A",
            "verification": "revision",
            "verification_failure": "",
            "original_tokens": 14,
            "revision_tokens": 6,
            "critique_raw": "EVALUATION: too long.\nSUGGESTIONS: cut.",
            "revision_raw": "REVISED ANSWER: Fewer cars, calmer streets.",
            "provenance": json.dumps({"model": "rules"}),
        },
        {
            "persona_id": "pB",
            "prompt_id": "q1",
            "split": "train",
            "prompt": "Cars in cities?",
            "original": "A long balanced answer about cars in cities and their many trade-offs.",
            "critique": None,
            "revision": None,
            "chosen": None,
            "rejected": None,
            "failure": "degenerate: critique echoes the instruction",
            "order_shown": "original,revision",
            "verification_choice": None,
            "verification": None,
            "verification_failure": "",
            "original_tokens": 14,
            "revision_tokens": None,
            "critique_raw": "EVALUATION: how the answer fits this person",
            "revision_raw": "",
            "provenance": "{}",
        },
    ]
    table = pd.DataFrame(rows, columns=FEEDBACK_COLUMNS).astype(
        {"original_tokens": "Int64", "revision_tokens": "Int64"}
    )
    write_table(personas, run / "personas.parquet", table="personas")
    write_table(prompts, run / "prompts.parquet", table="prompts")
    write_table(table, run / "feedback.parquet", table="feedback")
    return run


@pytest.mark.slow
def test_the_notebook_shows_a_run(monkeypatch, tmp_path) -> None:
    defs = _run_notebook(monkeypatch, _run_dir(tmp_path), tmp_path / "runs")
    counts = defs["plan_counts"].set_index("plan")
    assert counts.loc["PERSONA (1,586 x 3,000 + 868 prompts)", "pairs"] == 317_200
    assert counts.loc["PERSONA (1,586 x 3,000 + 868 prompts)", "calls per pair"] == 2.012
    assert counts.loc["this run", "pairs"] == 2 and counts.loc["this run", "prompts (originals)"] == 1
    assert defs["row"]["persona_id"] == "pA" and defs["row"]["verification"] == "revision"
    assert defs["persona_text"] == "age: 70\nsex: Male\n"
    assert "made" not in defs  # no LLM call without pressing the button
    assert not (tmp_path / "runs" / "notebook_feedback").exists()


@pytest.mark.slow
def test_the_notebook_degrades_without_a_run(monkeypatch, tmp_path) -> None:
    defs = _run_notebook(monkeypatch, tmp_path / "nothing_here", tmp_path / "runs")
    assert defs["pairs_table"] is None and defs["personas"] is None
    assert defs["plan_counts"]["plan"].tolist() == ["PERSONA (1,586 x 3,000 + 868 prompts)"]
