"""The main job: every stage into one run directory, then every figure (``persona-lab reproduce``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from persona_lab import charts
from persona_lab.config import RunConfig, to_toml
from persona_lab.io import write_table, write_text
from persona_lab.llm import ResponseCache

CENSUS_FIGURE_DRAWS = 100_000
"""Draws from the embedded census model that stand in for the microdata in Fig. 13 when no PUMS file is given."""


def census_stage(cfg: RunConfig) -> tuple[object, pd.DataFrame, str, str | None]:
    """The census source personas are drawn from, the census table for Fig. 13, its description and weight column."""
    from persona_lab import census

    c = cfg.census
    if c.pums or c.states:
        options = {"detail": c.detail, "group_quarters": c.group_quarters}
        if c.pums:
            frame = census.load_persona_frame(c.pums, c.year, **options)
        else:
            frame = census.load_states(c.year, c.states, mirror=c.mirror, **options)
        source = census.PumsSource(frame, weighting=cfg.census.weighting)
        states = ", ".join(sorted(frame["state"].unique()))
        return (
            source,
            frame,
            f"ACS {cfg.census.year} PUMS ({states}), {len(frame):,} person records",
            "weight",
        )
    model = census.load_embedded_model()
    draws = model.sample(CENSUS_FIGURE_DRAWS, np.random.default_rng(cfg.seed + 1))
    return model, draws, f"embedded census model ({CENSUS_FIGURE_DRAWS:,} draws)", None


def reproduce(cfg: RunConfig, figures_dir: str | Path = "figures", console: Console | None = None) -> Path:
    """Run every stage of ``cfg`` into ``cfg.run_dir`` and write every figure to ``figures_dir``.

    Returns the run directory. Each stage's table is written atomically as soon as it is complete, and every LLM
    call goes through the run's response cache, so a rerun after a crash resumes where it stopped.
    """
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    write_text(cfg.run_dir / "config.toml", to_toml(cfg))
    with ResponseCache(cfg.run_dir / "llm_cache.sqlite") as cache:
        return _run_stages(cfg, Path(figures_dir), console or Console(stderr=True), cache)


def _run_stages(cfg: RunConfig, figures_dir: Path, console: Console, cache: ResponseCache) -> Path:
    from persona_lab.personas import check_quality, complete_personas, read_personas, table_from_personas
    from persona_lab.prompts import curate_prompts, funnel_counts

    run_dir = cfg.run_dir
    summary: dict[str, object] = {"run_dir": str(run_dir), "backend": cfg.llm.backend}
    started = time.perf_counter()

    console.rule(
        f"[bold]persona_lab reproduce[/] preset={cfg.preset} run={run_dir} backend={cfg.llm.backend}"
    )
    source, census_table, census_label, census_weight = census_stage(cfg)
    weighting = (
        cfg.census.weighting if census_weight else "pwgtp (the embedded model is the weighted population)"
    )
    console.print(f"census: {census_label}; sampling weights: {weighting}")
    summary["census"] = {"source": census_label, "weighting": weighting}

    completion = complete_personas(
        source,
        cfg.personas.n,
        cfg.seed,
        cfg.llm.backend,
        cache=cache,
        config=cfg,
        enrich=cfg.personas.enrich != 0,
        run_dir=run_dir,
        n_train=min(cfg.personas.n_train, cfg.personas.n),
    )
    personas = completion.personas
    write_table(personas, run_dir / "personas.parquet", table="personas")
    enriched = (
        personas[personas["enriched"].fillna(False).astype(bool)] if "enriched" in personas else personas[:0]
    )
    summary["personas"] = {
        "n": len(personas),
        "rules": completion.generation[0].to_dict(),
        "llm_consistency": completion.consistency.describe(),
        "quality_of_enriched": check_quality(enriched).summary() if len(enriched) else None,
    }
    console.print(completion.generation[0].summary())
    console.print(completion.consistency.describe())
    console.print(f"personas: {len(personas):,} written to {run_dir / 'personas.parquet'}")

    sub = f"{len(personas):,} personas from the {census_label}, seed {cfg.seed}"
    charts.save_figure(
        charts.persona_demographics_chart(personas, subtitle=sub), "fig02_persona_demographics", figures_dir
    )
    charts.save_figure(
        charts.census_demographics_chart(census_table, census_weight, subtitle=census_label),
        "fig13_census_demographics",
        figures_dir,
    )
    tvd = charts.panel_tvd(personas, census_table, census_weight)
    charts.save_figure(
        charts.demographics_comparison_chart(personas, census_table, census_weight, census_label),
        "fig13_persona_vs_census_tvd",
        figures_dir,
    )
    summary["persona_vs_census_tvd"] = tvd.round(4).to_dict()
    if len(enriched):
        released = None
        if cfg.personas.released is not None:
            released = table_from_personas(read_personas(cfg.personas.released), cfg.seed)
        chart = charts.ideology_chart(enriched, released, label=f"ours ({cfg.llm.backend})")
        charts.save_figure(chart, "personas_ideology_distribution", figures_dir)

    prompts, topics = curate_prompts(cfg, cache=cache, progress=True)
    charts.save_figure(charts.prompt_topics_figure(prompts, topics), "fig03_prompt_topics", figures_dir)
    summary["prompt_funnel"] = {str(k): int(v) for k, v in funnel_counts(prompts).itertuples(index=False)}
    summary["topics"] = topics["topic_name"].tolist()
    console.print(f"prompts: {int(prompts['kept'].sum()):,} kept of {len(prompts):,}; {len(topics)} topics")

    llm = cache.totals()
    llm["cached_token_share"] = (
        llm["cached_input_tokens"] / llm["input_tokens"] if llm["input_tokens"] else None
    )
    summary["llm"] = llm
    summary["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(_json_ready(summary), indent=2) + "\n"
    write_text(run_dir / "summary.json", text)
    console.print(f"persona vs census TVD per panel: {summary['persona_vs_census_tvd']}")
    console.print(f"prompt funnel: {summary['prompt_funnel']}")
    console.print(
        f"LLM: {llm['responses']:,} answers, {llm['failures']:,} recorded failures, {llm['input_tokens']:,} input "
        f"tokens ({llm['cached_token_share'] or 0:.0%} cached), {llm['output_tokens']:,} output, ${llm['cost_usd']:.4f}"
    )
    console.print(f"done in {summary['seconds']} s: {run_dir / 'summary.json'}, figures in {figures_dir}/")
    return run_dir


def _json_ready(obj: object) -> object:
    """Plain JSON data: NaN becomes null, numpy scalars become Python numbers, anything else a string."""
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def estimate_run(cfg: RunConfig) -> pd.DataFrame:
    """Dry run: the LLM calls, tokens and cost of every stage of ``cfg``, without calling any model.

    The requests are the real ones (the procedural personas are drawn, the prompts rule-filtered), so token
    counts are measured on the actual text; output tokens are the ``max_tokens`` upper bound. Not counted:
    redraws of profiles the LLM check rejects (PERSONA: about 8.5 % more checks) and JSON repair attempts.
    """
    from persona_lab.llm import estimate_cost
    from persona_lab.personas import consistency_request, enrichment_request, generate_personas
    from persona_lab.prompts import controversy_request, load_prompts, rule_filter, topic_name_request

    source, *_ = census_stage(cfg)
    personas, _ = generate_personas(source, cfg.personas.n, cfg.seed)
    rows = personas.to_dict("records")
    n_enrich = len(rows) if cfg.personas.enrich is None else min(cfg.personas.enrich, len(rows))
    prompts = rule_filter(load_prompts(cfg.prompts.source), cfg)
    kept = prompts.loc[prompts["kept"], "text"].tolist()
    classified = kept if cfg.prompts.limit is None else kept[: cfg.prompts.limit]
    stages = {
        "personas: LLM consistency check": (
            [consistency_request(r, config=cfg) for r in rows] if cfg.personas.llm_consistency else []
        ),
        "personas: enrichment": [enrichment_request(r, config=cfg) for r in rows[:n_enrich]],
        "prompts: controversy classifier": (
            [controversy_request(t) for t in classified] if cfg.prompts.llm_filter else []
        ),
        "prompts: topic names": [topic_name_request(classified[:5], [])] * cfg.prompts.n_topics,
    }
    rows_out = []
    for stage, requests in stages.items():
        # the whole spec, so a self-hosted ``@url`` server is costed 0 as in the real run
        est = estimate_cost(requests, cfg.llm.backend, prices=cfg.llm.prices, batch=cfg.llm.batch)
        rows_out.append(
            {
                "stage": stage,
                "calls": est.calls,
                "input_tokens": est.input_tokens,
                "max_output_tokens": est.output_tokens,
                "usd": est.usd if est.priced else None,
            }
        )
    table = pd.DataFrame(rows_out).astype({"usd": float})
    total = {"stage": "total", **table.drop(columns="stage").sum(min_count=1).to_dict()}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table.astype({"calls": int, "input_tokens": int, "max_output_tokens": int})
