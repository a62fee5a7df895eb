"""The census stage: open the census source (PUMS files or the embedded model) and draw Fig. 13."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from persona_lab.pipeline import RunContext, StageResult


class CensusStage:
    """Opens ``census.open_source(config.census)``; writes the census's demographic shares and Fig. 13."""

    name = "census"
    reads: tuple[str, ...] = ()
    writes = ("census_margins",)
    config = ("census", "seed")
    templates: tuple[Path, ...] = ()

    def plan(self, ctx: RunContext) -> list:
        return []

    def preview(self, ctx: RunContext) -> dict[str, pd.DataFrame]:
        return {}

    def run(self, ctx: RunContext) -> StageResult:
        from persona_lab import charts
        from persona_lab.census import not_raked

        opened = ctx.census()
        table = opened.census_table()
        ctx.console.print(f"census: {opened.description}")
        summary = opened.summary()
        if opened.population == "national":
            summary["not_raked"] = sorted(k for k in not_raked() if not k.startswith("margin "))
        return StageResult(
            tables={"census_margins": charts.demographic_shares(table, opened.weight_column)},
            figures={
                "fig13_census_demographics": charts.census_demographics_chart(
                    table, opened.weight_column, subtitle=opened.label
                )
            },
            summary={"census": summary},
        )
