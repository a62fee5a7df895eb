"""The bench stage: PERSONA Bench's modes, critic, pass@k, leave-one-out and intersections; Figs. 10-12."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from persona_lab.config import RunConfig
from persona_lab.pipeline import RunContext, StageResult

LOCAL_NOTE = "local SmolLM2-135M: proves the pipeline, not the science"
"""Subtitle of figures made with the local model."""


def _template_paths() -> tuple[Path, ...]:
    from persona_lab.bench import template_paths

    return template_paths()


def _personas_for_check(cfg: RunConfig) -> tuple[pd.DataFrame | None, bool]:
    """The personas the bench will draw from, as well as they are known before any stage runs.

    The run directory's ``personas.parquet`` when it exists (enriched); otherwise the personas stage's preview
    (procedural personas, same seed; open-ended attributes unknown), unless the census would first have to be
    downloaded, in which case the check waits for the stage's own start (still before any bench call).
    """
    path = Path(cfg.run_dir) / "personas.parquet"
    if path.exists():
        from persona_lab.io import read_table

        return read_table(path, table="personas"), True
    if cfg.census.states and cfg.census.mirror is None and not cfg.census.pums:
        return None, False
    from persona_lab.stages import STAGES

    producers = {t: s for s in STAGES for t in s.writes}
    ctx = RunContext(
        config=cfg,
        run_dir=cfg.run_dir,
        figures_dir=Path("figures"),
        console=Console(stderr=True, quiet=True),
        dry_run=True,
        progress=False,
        producers=producers,
    )
    return ctx.table("personas"), False


class BenchStage:
    """PERSONA Sec. 5: the models under test answer in four modes, a critic decides what needs revision."""

    name = "bench"
    reads = ("personas", "prompts")
    writes = ("bench", "bench_summaries")
    config = ("bench", "seed", "llm.backend", "llm.temperature")

    @property
    def templates(self) -> tuple[Path, ...]:  # type: ignore[override]
        return _template_paths()

    def check(self, cfg: RunConfig) -> list[str]:
        """Refuse a bad bench configuration before any stage runs; return the backends it calls besides
        ``llm.backend`` (the models under test and the critic), so their API keys are checked too."""
        from persona_lab.bench import bench_models, bench_personas, check_config, check_personas, critic_spec

        check_config(cfg)
        personas, enriched = _personas_for_check(cfg)
        if personas is not None:
            check_personas(cfg, bench_personas(personas, cfg.bench, limit=False), enriched=enriched)
        return [s for s in dict.fromkeys([*bench_models(cfg), critic_spec(cfg)]) if s != cfg.llm.backend]

    def preview(self, ctx: RunContext) -> dict[str, pd.DataFrame]:
        """The bench's tables need the models' answers: the preview is empty tables with the right columns."""
        from persona_lab.bench import empty_bench_table

        return {"bench": empty_bench_table(), "bench_summaries": pd.DataFrame()}

    def _tasks(self, ctx: RunContext) -> pd.DataFrame:
        from persona_lab.bench import bench_personas, bench_prompts, bench_tasks, select_items

        b = ctx.config.bench
        personas = bench_personas(ctx.table("personas"), b)
        prompts = bench_prompts(ctx.table("prompts"), b)
        return bench_tasks(select_items(personas, prompts, b.n_samples, ctx.config.seed), ctx.config)

    def plan(self, ctx: RunContext) -> dict[str, list[Any]]:
        """Every answer, verdict and judgement by backend (critic and judges with a placeholder answer of
        ``bench.answer_words`` words; see ``persona_lab.bench.plan_table`` for the breakdown by part)."""
        from persona_lab.bench import check_config, plan_requests

        check_config(ctx.config)
        return plan_requests(self._tasks(ctx), ctx.config)

    def run(self, ctx: RunContext) -> StageResult:
        from persona_lab import bench, charts

        cfg = ctx.config
        b = cfg.bench
        personas = ctx.table("personas")

        def send(requests: Any, spec: str, desc: str) -> list[Any]:
            return ctx.run_requests(requests, backend=spec, desc=desc)

        result = bench.run_bench(personas, ctx.table("prompts"), cfg, send)
        table = result.table
        accuracy = bench.mode_accuracy(table, b, seed=cfg.seed)
        passk = bench.pass_at_k_table(table, b, seed=cfg.seed)
        loo = bench.leave_one_out_table(table, b, seed=cfg.seed) if b.loo_attributes else None
        inter = bench.intersection_table(table, personas, b, seed=cfg.seed) if b.intersections else None
        subtlety = bench.cot_subtlety(table, b, seed=cfg.seed)
        dropped = bench.dropped_attribute_counts(result.summaries)
        if b.summary_judge:
            dropped = pd.concat(
                [dropped, bench.dropped_attribute_counts(result.summaries, source="judge")], ignore_index=True
            )
        local = any(s.startswith("local") for s in [*bench.bench_models(cfg), bench.critic_spec(cfg)])
        note = LOCAL_NOTE if local else f"critic {bench.critic_spec(cfg)}"
        figures = {
            "fig10_bench_modes": charts.bench_modes_chart(accuracy, subtitle=note),
            "fig11_summary_dropped_attributes": charts.summary_dropped_chart(dropped, subtitle=note),
            "fig12_pass_at_k": charts.pass_at_k_chart(passk, subtitle=note),
            "bench_cot_subtlety": charts.cot_subtlety_chart(subtlety, subtitle=note),
        }
        if loo is not None:
            figures["bench_leave_one_out"] = charts.bench_leave_one_out_chart(loo, subtitle=note)
        if inter is not None:
            figures["bench_intersections"] = charts.bench_intersections_chart(inter, subtitle=note)
        n_scored = int(table["score"].notna().sum())
        n_failed = int((table["failure"] != "").sum())
        ctx.console.print(
            f"bench: {len(result.items)} items, {len(table):,} answers, {n_scored:,} scored, "
            f"{n_failed:,} recorded failures"
        )
        incomplete = ""
        if n_scored == 0:
            incomplete = (
                f"no bench answer was scored ({n_failed} answers or verdicts failed; see bench.parquet's failure "
                "column)"
            )
        summary = {
            "bench": {
                "items": len(result.items),
                "items_requested": b.n_samples,
                "answers": len(table),
                "scored": n_scored,
                "failures": n_failed,
                "calls": result.calls,
                "accuracy": [
                    {k: r[k] for k in ("model", "mode", "accuracy", "se", "n", "failed", "unscored")}
                    for r in accuracy.to_dict("records")
                ],
                "pass_at_k": [
                    {k: r[k] for k in ("model", "estimator", "k", "value", "se")}
                    for r in passk.to_dict("records")
                    if r["k"] in (1, passk["k"].max())
                ],
                "cot_subtlety": [
                    {k: r[k] for k in ("model", "mode", "share_on_the_nose", "n")}
                    for r in subtlety.to_dict("records")
                ],
            }
        }
        return StageResult(
            tables={"bench": table, "bench_summaries": result.summaries},
            figures=figures,
            summary=summary,
            incomplete=incomplete,
        )
