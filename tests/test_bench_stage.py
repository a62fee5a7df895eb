"""The bench stage on the real local model (SmolLM2-135M via llama.cpp): answers in the four modes, the critic,
pass@k samples, leave-one-out and intersections, bench.parquet's columns, the figures, a replay from the cache,
the notebook headless on the result, and the paper preset's plan in the dry run."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from persona_lab import bench, charts
from persona_lab.config import BenchConfig, load_config, to_toml
from persona_lab.io import read_table, write_table
from persona_lab.llm import ResponseCache, degenerate_reason
from persona_lab.personas import read_personas, table_from_personas
from persona_lab.pipeline import RunContext, estimate_run
from persona_lab.prompts import load_prompts
from persona_lab.stages import STAGES

BENCH = next(s for s in STAGES if s.name == "bench")
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_bench.py"

SMALL = {
    "persona_split": "all",
    "prompt_split": "all",
    "n_personas": 2,
    "n_prompts": 1,
    "n_samples": 2,
    "answer_words": 25,
    "max_tokens": 96,
    "critic_max_tokens": 96,
    "pass_at_k_items": 1,
    "pass_at_k_samples": 2,
    "max_k": 2,
    "loo_attributes": ["age"],
    "loo_items": 1,
    "intersections": {"women": {"sex": ["Female"]}, "aged 65+": {"age": ["65+"]}},
    "bootstrap": 50,
}
"""A smaller tiny run: 2 items x 4 modes, 1 item x 2 pass@k samples, 1 item x 3 leave-one-out variants."""


@pytest.fixture(scope="module")
def ran(shared: Path, tmp_path_factory: pytest.TempPathFactory):
    """The bench stage run once on released personas and the embedded questions, with the local model."""
    pytest.importorskip("llama_cpp", reason="the local extra is not installed")
    root = tmp_path_factory.mktemp("bench_stage")
    cfg = load_config("tiny", name="run", runs_dir=root)
    cfg = cfg.model_copy(update={"bench": BenchConfig.model_validate(cfg.bench.model_dump() | SMALL)})
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True)
    personas = table_from_personas(read_personas(shared / "persona" / "personas_sample100.json"), 0)
    write_table(personas, run_dir / "personas.parquet", table="personas")
    write_table(
        load_prompts(None).assign(kept=True, split="heldout"), run_dir / "prompts.parquet", table="prompts"
    )
    (run_dir / "config.toml").write_text(to_toml(cfg))
    assert BENCH.check(cfg) == []
    with ResponseCache(run_dir / "llm_cache.sqlite") as cache:
        ctx = RunContext(
            config=cfg,
            run_dir=run_dir,
            figures_dir=root / "figs",
            console=Console(quiet=True),
            cache=cache,
            progress=False,
        )
        result = BENCH.run(ctx)
        requests = [cache.request(k) for k in cache.keys()]
        totals = cache.totals()
        replay = BENCH.run(ctx)
        after = cache.totals()
    for name, table in result.tables.items():
        write_table(table, run_dir / f"{name}.parquet", table=name)
    return cfg, personas, result, requests, totals, replay, after


@pytest.mark.local_model
def test_bench_parquet_has_every_answer_with_its_verdict_or_failure(ran) -> None:
    cfg, _, result, _, totals, _, _ = ran
    table = result.tables["bench"]
    assert list(table.columns) == list(bench.BENCH_COLUMNS)
    # 2 items x 4 modes + 1 item x 2 samples + 1 item x (full, baseline, without age)
    assert table.groupby("experiment").size().to_dict() == {"modes": 8, "pass_at_k": 2, "leave_one_out": 3}
    assert table[table["experiment"] == "pass_at_k"]["sample"].tolist() == [0, 1]
    assert set(table["model"]) == {"local"} and set(table["critic"]) == {"local"}
    for row in table.to_dict("records"):
        if row["answer_failure"]:
            # a failure is recorded with its kind and never counted as a pass
            assert row["failure"] == row["answer_failure"] and row["score"] != 1.0
            assert pd.isna(row["answer"])
        else:
            assert degenerate_reason(row["answer"], siblings=[row["question"]]) is None
            if row["critic_failure"]:
                assert math.isnan(row["score"]) and row["failure"] == f"critic: {row['critic_failure']}"
            else:
                assert row["score"] == (0.0 if row["needs_revision"] else 1.0) and row["critic_rationale"]
    assert (table[table["mode"] == "baseline"]["persona"] == "").all()
    loo = table[table["experiment"] == "leave_one_out"].set_index("variant")
    lines = {v: [line.partition(": ")[0] for line in loo.loc[v, "persona"].splitlines()] for v in loo.index}
    assert "age" in lines["full"] and "age" not in lines["baseline"] and "age" not in lines["without age"]
    assert lines["baseline"] == [k for k in lines["full"] if k != "age"]
    # every LLM call went to the local model: answers, verdicts, subtlety judgements
    assert totals["responses"] + totals["failures"] > 0


@pytest.mark.local_model
def test_the_critic_never_saw_a_reasoning_and_judged_each_pass_at_k_sample(ran) -> None:
    _, _, result, requests, _, _, _ = ran
    table = result.tables["bench"]
    critic = [r for r in requests if r.messages[0].content.startswith("You review answers")]
    texts = ["\n".join(m.content for m in r.messages) for r in critic]
    answered = table[table["answer_failure"] == ""]
    # one request per distinct (persona, question, answer); a failed verdict leaves no stored answer
    assert 0 < len(critic) <= len(answered)
    for row in answered[answered["critic_failure"] == ""].to_dict("records"):
        # each answer, pass@k samples included, judged with its own question in the question's place
        own = [
            t
            for t in texts
            if f"Their question: {row['question']}" in t
            and f"The answer they received:\n{row['answer']}" in t
        ]
        assert own
        # the reasoning or summary is not in the critic's request (unless the answer itself repeats it)
        if row["reasoning"] and row["reasoning"] not in row["answer"] + row["question"]:
            assert not any(row["reasoning"] in t for t in own)


@pytest.mark.local_model
def test_a_rerun_replays_from_the_cache_with_no_call(ran) -> None:
    _, _, result, _, totals, replay, after = ran
    assert after["responses"] == totals["responses"] and after["failures"] == totals["failures"]
    pd.testing.assert_frame_equal(result.tables["bench"], replay.tables["bench"])


@pytest.mark.local_model
def test_the_figures_render(ran, tmp_path: Path) -> None:
    _, _, result, _, _, _, _ = ran
    expected = {
        "fig10_bench_modes",
        "fig11_summary_dropped_attributes",
        "fig12_pass_at_k",
        "bench_cot_subtlety",
        "bench_leave_one_out",
        "bench_intersections",
    }
    assert set(result.figures) == expected
    for name, chart in result.figures.items():
        paths = charts.save_figure(chart, name, tmp_path)
        assert all(p.stat().st_size > 1000 for p in paths)
    assert "local SmolLM2-135M" in str(result.figures["fig10_bench_modes"].to_dict())
    summary = result.summary["bench"]
    assert summary["items"] == 2 and summary["answers"] == 13


@pytest.mark.local_model
@pytest.mark.slow
def test_the_notebook_runs_headless_on_the_run_and_calls_nothing(ran, tmp_path: Path, monkeypatch) -> None:
    cfg, _, result, _, _, _, _ = ran
    monkeypatch.setenv("PERSONA_LAB_RUN", str(cfg.run_dir))
    monkeypatch.setenv("PERSONA_LAB_RUNS", str(tmp_path))
    monkeypatch.setenv("MARIMO_SKIP_UPDATE_CHECK", "1")
    spec = importlib.util.spec_from_file_location("notebook_06_bench", NOTEBOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run()
    written = read_table(cfg.run_dir / "bench.parquet", table="bench")
    pd.testing.assert_frame_equal(defs["shown"], written)
    pd.testing.assert_frame_equal(defs["accuracy"], bench.mode_accuracy(written, cfg.bench))
    assert defs["fresh"] is None and defs["config_error"] is None
    assert defs["bench_config"].bench.n_samples == 3
    assert not (tmp_path / "notebook_bench").exists()  # no call without pressing the button


def test_the_paper_preset_plans_pass_at_k_with_batch_prices(tmp_path: Path) -> None:
    cfg = load_config("paper", name="paper", runs_dir=tmp_path, llm={"backend": "openai:gpt-4o"})
    planned = BENCH.plan(_dry(cfg))
    assert list(planned) == ["openai:gpt-4o"]
    tasks = BENCH._tasks(_dry(cfg))
    parts = bench.plan_table(tasks, cfg).set_index("part")
    # 700 items x 16 samples, each answered and judged
    assert (
        parts.loc["answers: pass_at_k", "calls"] == 11_200
        and parts.loc["critic: pass_at_k", "calls"] == 11_200
    )
    assert parts.loc["answers: modes", "calls"] == 2_800
    assert parts.loc["answers: leave_one_out", "calls"] == 100 * 9
    assert parts.loc["subtlety judge", "calls"] == 1_400
    assert sum(len(v) for v in planned.values()) == int(parts["calls"].sum()) == 31_200
    # output tokens: answers x 1,024 + verdicts x 512
    assert parts.loc["answers: pass_at_k", "max_output_tokens"] == 11_200 * 1024
    batch = cfg.model_copy(update={"llm": cfg.llm.model_copy(update={"batch": True})})
    half = bench.plan_table(tasks, batch).set_index("part")
    assert half.loc["answers: pass_at_k", "usd"] == pytest.approx(parts.loc["answers: pass_at_k", "usd"] / 2)
    dry = estimate_run(cfg, ["bench"]).set_index("stage")
    assert dry.loc["bench", "calls"] == 31_200
    assert dry.loc["bench", "usd"] == pytest.approx(parts["usd"].sum())


def _dry(cfg) -> RunContext:
    producers = {t: s for s in STAGES for t in s.writes}
    return RunContext(
        config=cfg,
        run_dir=cfg.run_dir,
        figures_dir=Path("figures"),
        console=Console(quiet=True),
        dry_run=True,
        progress=False,
        producers=producers,
    )
