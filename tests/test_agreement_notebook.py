"""The agreement notebook runs headless on a run directory with judgments (people from a CSV, two models)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from test_agreement_fixtures import make_run

from persona_lab.agreement import JUDGMENT_COLUMNS, load_run_study, read_annotations_csv
from persona_lab.io import write_table

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_agreement.py"


def write_results(run: Path) -> pd.DataFrame:
    """judgments.parquet and the study as the agreement stage writes them: 4 people per persona from a CSV
    (persona 1: always the revision; persona 2: 3 of 4 the original) and two model annotators."""
    study = load_run_study(run).study
    personas = list(pd.unique(study["persona_id"]))
    lines = ["PROLIFIC_PID,persona_id,prompt_id,choice,rationale"]
    for k, p in enumerate(personas):
        for q in study.loc[study["persona_id"] == p, "prompt_id"]:
            for h in range(4):
                choice = "revision" if k == 0 or h == 3 else "original"
                lines.append(f"h{k}{h},{p},{q},{choice},because")
    (run / "people.csv").write_text("\n".join(lines) + "\n")
    humans = read_annotations_csv(run / "people.csv", study)
    models = []
    for a, flip in (("m1", False), ("m2", True)):
        for i, row in enumerate(study.itertuples()):
            choice = "revision" if (i % 2 == 0) != flip else "original"
            models.append(
                {
                    "annotator": a,
                    "kind": "model",
                    "persona_id": row.persona_id,
                    "prompt_id": row.prompt_id,
                    "choice": choice,
                    "order_shown": "revision,original",
                    "rationale": f"{a} says so",
                    "failure": "",
                    "raw": "",
                    "backend": "local",
                    "model": "SmolLM2",
                    "temperature": 0.0,
                    "sample": 0,
                    "source": "model",
                }
            )
    judgments = pd.concat([humans, pd.DataFrame(models)], ignore_index=True)[list(JUDGMENT_COLUMNS)]
    write_table(judgments, run / "judgments.parquet", table="judgments")
    write_table(study, run / "agreement" / "study.parquet", table="agreement/study")
    write_table(
        pd.DataFrame(
            {
                "attribute": ["age"],
                "pair": [0],
                "persona_id": [personas[0]],
                "value": ["58"],
                "n_questions": [3],
                "n_items": [3],
                "kappa": [0.25],
                "low": [-0.5],
                "high": [1.0],
                "reason": [""],
            }
        ),
        run / "agreement" / "loo_kappa.parquet",
        table="agreement/loo_kappa",
    )
    return judgments


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path, shared, monkeypatch) -> None:
    run = make_run(tmp_path, shared, n_personas=2, n_prompts=3, agreement={"n_personas": 2, "n_questions": 3})
    write_results(run)
    before = sorted(p.name for p in run.rglob("*"))
    monkeypatch.setenv("PERSONA_LAB_RUN_DIR", str(run))
    monkeypatch.setenv("MARIMO_SKIP_UPDATE_CHECK", "1")
    spec = importlib.util.spec_from_file_location("notebook_05_agreement", NOTEBOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run()
    panels = defs["panels"]
    assert panels.has_human and set(panels.table["panel"]) == {
        "people vs m1",
        "people vs m2",
        "people vs people",
        "m1 vs m2",
    }
    # persona 1's people always chose the revision (one class only with each other); persona 2's: 3 of 4 original
    hh = panels.table[panels.table["panel"] == "people vs people"].set_index(["persona_a", "persona_b"])
    first, second = panels.personas
    assert hh.loc[(first, first), "reason"] == "one class only"
    votes = defs["ref"].labels
    assert defs["ref"].name == "people" and len(votes) == 6
    assert set(votes.loc[votes["persona_id"] == second, "choice"]) == {"original"}
    assert {"All", "Sex"} <= set(defs["by_group"]["grouping"])
    assert len(defs["drill"]) > 0
    assert sorted(p.name for p in run.rglob("*")) == before  # the notebook writes nothing
