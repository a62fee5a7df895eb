"""The prompts stage: the PRISM funnel (rules, LLM controversy filter), topics, the split; Fig. 3."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from persona_lab.pipeline import RunContext, StageResult


class PromptsStage:
    """PERSONA Sec. 3.2: prompts filtered to the controversial ones, clustered into topics and split."""

    name = "prompts"
    reads: tuple[str, ...] = ()
    writes = ("prompts", "topics")
    config = ("prompts", "seed", "llm.backend", "llm.temperature")
    templates: tuple[Path, ...] = ()

    def _rule_filtered(self, ctx: RunContext) -> pd.DataFrame:
        from persona_lab.prompts import load_prompts, rule_filter

        return rule_filter(load_prompts(ctx.config.prompts.source), ctx.config)

    def preview(self, ctx: RunContext) -> dict[str, pd.DataFrame]:
        """Every rule-passing prompt (at most ``prompts.limit``) kept, split by the configured sizes: an upper
        bound on what the LLM filter keeps."""
        from persona_lab.prompts import split_prompts

        cfg = ctx.config.prompts
        df = self._rule_filtered(ctx)
        if cfg.limit is not None:
            over = df.index[df["kept"]][cfg.limit :]
            df.loc[over, "kept"] = False
        df["topic"] = 0
        df = split_prompts(df, cfg.n_train, cfg.n_heldout, ctx.config.seed)
        return {"prompts": df, "topics": pd.DataFrame({"topic": [0]})}

    def plan(self, ctx: RunContext) -> list:
        from persona_lab.prompts import controversy_request, topic_name_request

        cfg = ctx.config.prompts
        df = self._rule_filtered(ctx)
        kept = df.loc[df["kept"], "text"].tolist()
        classified = kept if cfg.limit is None else kept[: cfg.limit]
        checks = [controversy_request(t) for t in classified] if cfg.llm_filter else []
        return checks + [topic_name_request(classified[:5], [])] * cfg.n_topics

    def run(self, ctx: RunContext) -> StageResult:
        from persona_lab import charts
        from persona_lab.prompts import curate_prompts, funnel_counts

        prompts, topics = curate_prompts(
            ctx.config, cache=ctx.cache, backend=ctx.backend(), progress=bool(ctx.progress)
        )
        n_kept = int(prompts["kept"].sum())
        ctx.console.print(f"prompts: {n_kept:,} kept of {len(prompts):,}; {len(topics)} topics")
        incomplete = ""
        if n_kept == 0:
            failed = int(prompts["llm_failure"].notna().sum())
            incomplete = (
                f"no prompt survived the filters ({failed} of the LLM classifier's calls failed; see the cache's "
                "failures with `persona-lab llm stats`)"
            )
        return StageResult(
            tables={"prompts": prompts, "topics": topics},
            figures={"fig03_prompt_topics": charts.prompt_topics_figure(prompts, topics)},
            summary={
                "prompt_funnel": {str(k): int(v) for k, v in funnel_counts(prompts).itertuples(index=False)},
                "topics": topics["topic_name"].tolist() if "topic_name" in topics else [],
            },
            incomplete=incomplete,
        )
