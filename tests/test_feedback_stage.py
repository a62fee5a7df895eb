"""The feedback stage: its plan in the dry run (no model), and a run killed with kill -9 that resumes to the same
tables as an uninterrupted run (local model)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from persona_lab.config import load_config
from persona_lab.pipeline import RunContext, estimate_run
from persona_lab.stages import STAGES
from persona_lab.stages._feedback import FeedbackStage


def _dry_context(cfg, tmp_path: Path) -> RunContext:
    return RunContext(
        config=cfg,
        run_dir=tmp_path / "no_run",
        figures_dir=tmp_path / "figures",
        console=Console(quiet=True),
        dry_run=True,
        progress=False,
        producers={table: stage for stage in STAGES for table in stage.writes},
    )


def test_the_feedback_stage_is_registered_after_prompts() -> None:
    names = [s.name for s in STAGES]
    assert names.index("feedback") == names.index("prompts") + 1
    stage = STAGES[names.index("feedback")]
    assert stage.reads == ("personas", "prompts") and stage.writes == ("feedback",)
    assert [p.name for p in stage.templates] == [
        "critique.txt",
        "revision.txt",
        "single.txt",
        "original.txt",
        "verify.txt",
    ]


@pytest.mark.slow
def test_the_papers_plan_from_the_previews_of_personas_and_prompts(shared, tmp_path) -> None:
    prism = shared / "prism" / "prism_opening_prompts.json"
    cfg = load_config("paper", prompts={"source": str(prism)}, runs_dir=tmp_path)
    ctx = _dry_context(cfg, tmp_path)
    plan = FeedbackStage().pairs_plan(ctx).plan
    assert len(plan) == 317_200
    counts = plan["split"].value_counts().to_dict()
    assert counts["train"] == 158_600 and counts["test_seen"] + counts["test_unseen"] == 158_600
    assert set(plan.groupby("persona_id").size()) == {200} and plan["persona_id"].nunique() == 1586
    prompts = ctx.table("prompts")  # the prompts stage's preview: rule-filtered PRISM prompts, split
    split = prompts.set_index("prompt_id")["split"]
    assert set(split[plan.loc[plan["split"] == "test_seen", "prompt_id"]]) == {"train"}
    assert set(split[plan.loc[plan["split"] == "train", "prompt_id"]]) == {"train"}
    assert set(split[plan.loc[plan["split"] == "test_unseen", "prompt_id"]]) == {"heldout"}
    assert not plan.duplicated(["persona_id", "prompt_id"]).any()


def test_the_dry_run_counts_originals_critiques_revisions_and_checks(tmp_path) -> None:
    cfg = load_config("tiny", runs_dir=tmp_path)
    ctx = _dry_context(cfg, tmp_path)
    inputs = FeedbackStage().pairs_plan(ctx)
    assert len(inputs.plan) == 12  # 4 personas x (1 train + 1 seen + 1 unseen)
    n_prompts = len(inputs.prompt_ids)
    table = estimate_run(cfg, ["feedback"]).set_index("stage")
    # one original per prompt, a critique and a revision per pair, one verification per pair
    assert table.loc["feedback", "calls"] == n_prompts + 2 * 12 + 12
    assert table.loc["feedback", "max_output_tokens"] == 64 * n_prompts + (64 + 48) * 12 + 2 * 12
    single = load_config("tiny", runs_dir=tmp_path, feedback={"single_call": True, "verify": False})
    assert estimate_run(single, ["feedback"]).set_index("stage").loc["feedback", "calls"] == n_prompts + 12


SMALL = """
[personas]
n = 4
n_train = 3
enrich = 0
llm_consistency = false

[prompts]
llm_filter = false
n_topics = 1

[feedback]
n_personas = 1
pairs_train = 1
pairs_test_seen = 0
pairs_test_unseen = 1
original_max_tokens = 24
critique_max_tokens = 32
revision_max_tokens = 24
bootstrap = 100
"""


def _cli(run_dir: Path, config: Path, *stages: str) -> list[str]:
    exe = Path(sys.executable).with_name("persona-lab")
    return [str(exe), "run", *stages, "--preset", "tiny", "--config", str(config), "--run-dir", str(run_dir),
            "--figures", str(run_dir / "figures")]  # fmt: skip


def _run(cmd: list[str], env: dict[str, str]) -> None:
    """Run the CLI; exit code 3 (an incomplete run: the local model made no pair) is a finished run too."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode in (0, 3), out.stderr[-2000:]
    if out.returncode == 3:
        assert "incomplete run (feedback: no feedback pair was produced" in out.stderr


def _responses(run_dir: Path) -> int:
    with sqlite3.connect(f"file:{run_dir / 'llm_cache.sqlite'}?mode=ro", uri=True, timeout=10) as db:
        return int(db.execute("SELECT count(*) FROM responses").fetchone()[0])


@pytest.mark.local_model
@pytest.mark.slow
def test_a_run_killed_mid_stage_resumes_to_the_same_tables(tmp_path) -> None:
    config = tmp_path / "small.toml"
    config.write_text(SMALL, encoding="utf-8")
    env = {**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1"}
    base = tmp_path / "base"
    _run(_cli(base, config, "prompts"), env)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    shutil.copytree(base, whole)
    shutil.copytree(base, killed)

    _run(_cli(whole, config, "feedback"), env)

    before = _responses(killed)
    proc = subprocess.Popen(
        _cli(killed, config, "feedback"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and _responses(killed) < before + 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the stage finished before it could be killed; give it more work"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    made = _responses(killed) - before
    assert made >= 2
    assert not (killed / "feedback.parquet").exists()  # nothing written before the stage completes

    _run(_cli(killed, config, "feedback"), env)
    a = pd.read_parquet(whole / "feedback.parquet")
    b = pd.read_parquet(killed / "feedback.parquet")
    assert len(a) == 2
    pd.testing.assert_frame_equal(a, b)
    assert pq.read_table(whole / "dpo.parquet").equals(pq.read_table(killed / "dpo.parquet"))
    assert (killed / "hf" / "feedback" / "dataset_dict.json").exists()
