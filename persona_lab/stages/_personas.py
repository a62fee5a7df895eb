"""The personas stage: procedural personas, the LLM consistency check with redraws, enrichment; Fig. 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from persona_lab.pipeline import RunContext, StageResult

_LLM = ("llm.backend", "llm.temperature")


class PersonasStage:
    """PERSONA Sec. 3.1: personas from the census, checked for consistency and enriched by the LLM."""

    name = "personas"
    reads = ("census_margins",)
    writes = ("personas", "rejected_personas")
    config = ("personas", "seed", *_LLM)
    templates: tuple[Path, ...] = ()

    def preview(self, ctx: RunContext) -> dict[str, pd.DataFrame]:
        from persona_lab.personas import generate_personas

        cfg = ctx.config
        personas, _ = generate_personas(
            ctx.census().source, cfg.personas.n, cfg.seed, n_train=min(cfg.personas.n_train, cfg.personas.n)
        )
        return {"personas": personas}

    def plan(self, ctx: RunContext) -> list:
        from persona_lab.personas import consistency_request, enrichment_request

        cfg = ctx.config
        rows = ctx.table("personas").to_dict("records")
        n_enrich = len(rows) if cfg.personas.enrich is None else min(cfg.personas.enrich, len(rows))
        checks = [consistency_request(r, config=cfg) for r in rows] if cfg.personas.llm_consistency else []
        return checks + [enrichment_request(r, config=cfg) for r in rows[:n_enrich]]

    def run(self, ctx: RunContext) -> StageResult:
        from persona_lab import charts
        from persona_lab.census import national_comparison, national_tvd
        from persona_lab.personas import check_quality, complete_personas, read_personas, table_from_personas

        cfg = ctx.config
        opened = ctx.census()
        completion = complete_personas(
            opened.source,
            cfg.personas.n,
            cfg.seed,
            ctx.backend(),
            cache=ctx.cache,
            config=cfg,
            enrich=cfg.personas.enrich != 0,
            progress=ctx.progress,
            n_train=min(cfg.personas.n_train, cfg.personas.n),
        )
        personas = completion.personas
        enriched = (
            personas[personas["enriched"].fillna(False).astype(bool)]
            if "enriched" in personas
            else personas[:0]
        )
        ctx.console.print(completion.generation[0].summary())
        ctx.console.print(completion.consistency.describe())
        census_table = opened.census_table()
        weight = opened.weight_column
        figures = {
            "fig02_persona_demographics": charts.persona_demographics_chart(
                personas, subtitle=f"{len(personas):,} personas from the {opened.label}, seed {cfg.seed}"
            ),
            "fig13_persona_vs_census_tvd": charts.demographics_comparison_chart(
                personas, census_table, weight, opened.label
            ),
        }
        figures["fig13_persona_vs_national"] = charts.fig13_persona_vs_national(
            personas, source_label=opened.label
        )
        released = None
        if cfg.personas.released is not None:
            released = table_from_personas(read_personas(cfg.personas.released), cfg.seed)
            figures["personas_vs_release"] = charts.personas_vs_release(personas, released)
        if len(enriched):
            figures["personas_ideology_distribution"] = charts.ideology_chart(
                enriched, released, label=f"ours ({cfg.llm.backend})"
            )
        tvd = charts.panel_tvd(personas, census_table, weight)
        ctx.console.print(
            f"personas: {len(personas):,}; TVD to the census per panel: {tvd.round(3).to_dict()}"
        )
        return StageResult(
            tables={"personas": personas, "rejected_personas": completion.rejected},
            figures=figures,
            summary={
                "personas": {
                    "n": len(personas),
                    "rules": completion.generation[0].to_dict(),
                    "llm_consistency": completion.consistency.describe(),
                    "quality_of_enriched": check_quality(enriched).summary() if len(enriched) else None,
                },
                "persona_vs_census_tvd": tvd.round(4).to_dict(),
                "persona_vs_national_tvd": national_tvd(national_comparison(personas)).round(4).to_dict(),
            },
        )
