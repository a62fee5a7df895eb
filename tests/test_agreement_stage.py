"""The agreement stage: registration, configuration checks, the dry-run plan, and a real run on the local model
(model annotators at two temperatures, a people CSV, the leave-one-out analysis, Figs. 5-9)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_agreement_fixtures import make_run

from persona_lab.config import load_config
from persona_lab.errors import PersonaLabError
from persona_lab.io import read_table
from persona_lab.pipeline import estimate_run, fingerprints, run_stages
from persona_lab.stages import STAGES

SMALL = {
    "n_personas": 2,
    "n_questions": 2,
    "annotators": [{"temperature": 0.0}, {"temperature": 1.0, "sample": 1}],
    "judge_max_tokens": 48,
    "n_bootstrap": 50,
    "loo_attributes": ["sex"],
    "loo_pairs": 1,
    "loo_questions": 2,
    "loo_max_tokens": 24,
    "loo_justify": False,
}
"""2 personas x 2 questions x 2 annotators = 8 judgments; leave-one-out 1 pair x 2 twins x 2 questions = 4
DPF items (8 calls) and up to 4 twin judgments: at most 20 calls."""


def stage(name: str):  # noqa: ANN201
    return next(s for s in STAGES if s.name == name)


def test_registered_after_feedback_reading_its_table() -> None:
    names = [s.name for s in STAGES]
    assert names.index("agreement") == names.index("feedback") + 1
    s = stage("agreement")
    assert s.reads == ("personas", "prompts", "feedback") and s.writes[0] == "judgments"
    assert {p.name for p in s.templates} >= {"judge.txt", "judge_choice.txt", "critique.txt", "revision.txt"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_votes": 5}, "exceeds agreement.raters_per_persona = 4"),
        ({"reference": "gpt-5"}, "agreement.reference = 'gpt-5'"),
        ({"loo_attributes": ["shoe size"]}, "'shoe size' is not a PERSONA attribute"),
        ({"human_csv": ["/no/such/file.csv"]}, "does not exist"),
        ({"annotators": [{"backend": "nonsense"}]}, "nonsense"),
    ],
)
def test_bad_settings_fail_before_any_stage_runs(tmp_path, overrides, message) -> None:
    cfg = load_config("tiny", runs_dir=tmp_path, agreement=overrides)
    with pytest.raises(PersonaLabError, match=message):
        stage("agreement").check(cfg)


def seed_upstream(cfg) -> None:  # noqa: ANN001
    """Record the upstream stages as done (their tables are the fixture's), so only the agreement stage runs."""
    expected = fingerprints(cfg)
    tables = {"census": [], "personas": ["personas"], "prompts": ["prompts"], "feedback": ["feedback"]}
    record = {
        name: {"fingerprint": expected[name], "tables": t, "files": [], "figures": []}
        for name, t in tables.items()
    }
    (cfg.run_dir / "stages.json").write_text(json.dumps({"stages": record}))


def small_config(run: Path, **agreement):  # noqa: ANN003, ANN201
    return load_config(
        path=run / "config.toml", name=run.name, runs_dir=run.parent, agreement=SMALL | agreement
    )


def test_the_dry_run_plans_judgments_and_the_leave_one_out(tmp_path, shared) -> None:
    run = make_run(tmp_path, shared, n_personas=3, n_prompts=3)
    cfg = small_config(run)
    table = estimate_run(cfg, ["agreement"]).set_index("stage")
    # 8 study judgments (48 tokens) + 8 DPF calls (24 tokens each) + 4 bare twin choices (8 tokens)
    assert table.loc["agreement", "calls"] == 8 + 8 + 4
    assert table.loc["agreement", "max_output_tokens"] == 8 * 48 + 8 * 24 + 4 * 8


@pytest.mark.local_model
@pytest.mark.slow
def test_a_real_run_writes_judgments_and_figures_5_to_9(tmp_path, shared) -> None:
    run = make_run(tmp_path, shared, n_personas=3, n_prompts=3, failed=((0, 2),))
    # a small people CSV for the study's first persona: four annotators, 3 : 1 and 2 : 2 on its two questions
    from persona_lab.agreement import study_design

    study = study_design(
        read_table(run / "feedback.parquet"), read_table(run / "prompts.parquet"), n_personas=2, n_questions=2
    )
    p = study["persona_id"].iloc[0]
    q1, q2 = study.loc[study["persona_id"] == p, "prompt_id"]
    csv = run / "people.csv"
    csv.write_text(
        "PROLIFIC_PID,persona_id,prompt_id,choice,rationale\n"
        + "".join(f"h{i},{p},{q1},{c},why {i}\n" for i, c in enumerate(["revision"] * 3 + ["original"]))
        + "".join(f"h{i},{p},{q2},{c},why {i}\n" for i, c in enumerate(["revision"] * 2 + ["original"] * 2))
    )
    cfg = small_config(run, human_csv=[str(csv)])
    seed_upstream(cfg)
    figures = tmp_path / "figures"
    summary = run_stages(cfg, ["agreement"], figures_dir=figures, progress=False)
    assert summary["stages"]["agreement"]["state"] == "ran"
    assert summary["stages"]["feedback"]["state"] == "skipped (done)"

    judgments = read_table(run / "judgments.parquet", table="judgments")
    models = judgments[judgments["kind"] == "model"]
    assert len(models) == 8 and set(models["annotator"]) == {"local t=0", "local t=1 s1"}
    assert (models["model"] == "SmolLM2-135M-Instruct.Q4_1").all()
    ok = models["failure"] == ""
    assert models.loc[ok, "choice"].isin(["revision", "original"]).all()
    assert models.loc[~ok, "choice"].isna().all()
    rejected = models["failure"].str.match(r"(degenerate|contradictory)")
    assert (models.loc[rejected, "raw"] != "").all()  # an answer the checks reject keeps its raw text
    # every failure says what it is: a check's verdict or the runner's failure kind (with the raw excerpt)
    assert (
        models.loc[~ok, "failure"]
        .str.match(r"(degenerate|contradictory|unparseable|timeout|server|\w+): ")
        .all()
    )
    assert set(models["order_shown"]) <= {"revision,original", "original,revision"}
    humans = judgments[judgments["kind"] == "human"]
    assert len(humans) == 8 and set(humans["source"]) == {"csv:people.csv"}
    votes = read_table(run / "agreement" / "votes.parquet", table="agreement/votes").set_index("prompt_id")
    assert votes.loc[q1, "status"] == "majority" and votes.loc[q1, "choice"] == "revision"
    assert votes.loc[q2, "status"] == "tie" and pd.isna(votes.loc[q2, "choice"])

    kappa = read_table(run / "agreement" / "kappa.parquet", table="agreement/kappa")
    assert {
        "people vs local t=0",
        "people vs local t=1 s1",
        "people vs people",
        "local t=0 vs local t=1 s1",
    } == set(kappa["panel"])
    revisions = read_table(run / "agreement" / "loo_revisions.parquet", table="agreement/loo_revisions")
    assert len(revisions) == 4 and set(revisions["twin"]) == {"without", "with"}
    assert (revisions["failure"] != "").eq(revisions["revision"].isna()).all()
    loo = read_table(run / "agreement" / "loo_kappa.parquet", table="agreement/loo_kappa")
    assert len(loo) == 1 and loo["attribute"].iloc[0] == "sex"

    for name in (
        "fig05_leave_one_out",
        "fig06_kappa_human_vs_model",
        "fig07_kappa_human_vs_model_hist",
        "fig08_kappa_model_vs_model",
        "fig09_kappa_model_vs_model_hist",
    ):
        assert (figures / f"{name}.png").stat().st_size > 2000 and (figures / f"{name}.svg").exists()
    svg = (figures / "fig06_kappa_human_vs_model.svg").read_text()
    assert "No human labels" not in svg and "local SmolLM2-135M: proves the pipeline" in svg
    assert "temperatures of one model" in svg
    ag = summary["agreement"]
    assert ag["human_labels"] == 8 and ag["votes"] == {
        "majority": 1,
        "tie": 1,
        "no majority": 0,
        "too few votes": 0,
    }
    assert sum(a["judgments"] for a in ag["annotators"].values()) == 8

    again = run_stages(cfg, ["agreement"], figures_dir=figures, progress=False)  # replayed: nothing to do
    assert again["stages"]["agreement"]["state"] == "skipped (done)"
