"""The elephants stage: Pink Elephant pairs, plans, dialogues, the cut, DPF revisions, DPO pairs and the
evaluation with and without the avoid instruction (Castricato et al. 2024, arXiv 2402.07896)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.pipeline import RunContext, StageResult

LOCAL_NOTE = "local SmolLM2-135M: proves the pipeline, not the science"

TABLES = (
    "elephants/pairs",
    "elephants/plans",
    "elephants/dialogues",
    "elephants/dpf",
    "elephants/dpo",
    "elephants/eval",
    "elephants/results",
)


def _is_local(spec: str) -> bool:
    return spec == "local" or spec.startswith("local:")


class ElephantsStage:
    """Suppressing Pink Elephants with Direct Principle Feedback, Sec. 3 (data) and Sec. 4 (evaluation)."""

    name = "elephants"
    reads: tuple[str, ...] = ()
    writes = TABLES
    config = ("elephants", "seed", "llm.backend", "llm.temperature")

    @property
    def templates(self) -> tuple[Path, ...]:
        from persona_lab.dpf import load_principle
        from persona_lab.elephants import EMBEDDED_DOMAINS, PRINCIPLE, TEMPLATE_DIR, TEMPLATE_FILES

        return (
            *(TEMPLATE_DIR / f for f in TEMPLATE_FILES),
            *load_principle(PRINCIPLE).files,
            EMBEDDED_DOMAINS,
        )

    # -- configuration ---------------------------------------------------------------------------------------
    def check(self, cfg: Any) -> Iterable[str]:
        """Read the domains and pairs files (one clear error before any stage runs); return the extra backends."""
        from persona_lab.elephants import load_domains, load_pairs
        from persona_lab.llm import parse_spec

        e = cfg.elephants
        load_domains(e.domains)
        if e.pairs is not None:
            load_pairs(e.pairs)
        specs = [*e.eval_backends, *([e.judge_backend] if e.judge_backend else [])]
        for spec in specs:
            parse_spec(spec)
        return specs

    def _domains(self, ctx: RunContext) -> pd.DataFrame:
        from persona_lab.elephants import load_domains

        e = ctx.config.elephants
        domains = load_domains(e.domains)
        return domains.head(e.n_domains) if e.n_domains is not None else domains

    def _eval_specs(self, ctx: RunContext) -> list[str]:
        return list(dict.fromkeys(ctx.config.elephants.eval_backends or [ctx.config.llm.backend]))

    def _judge_spec(self, ctx: RunContext) -> str:
        return ctx.config.elephants.judge_backend or ctx.config.llm.backend

    # -- dry run ---------------------------------------------------------------------------------------------
    def _planned_pairs(self, ctx: RunContext) -> pd.DataFrame:
        """Every pair the run can keep: a user's pairs, or one placeholder per requested LLM pair (upper bound)."""
        from persona_lab.elephants import load_pairs, pairs_from_file, split_pairs

        e = ctx.config.elephants
        if e.pairs is not None:
            return pairs_from_file(load_pairs(e.pairs), test_fraction=e.test_fraction, seed=ctx.config.seed)
        rows = [
            {
                "pair_id": f"pair{i * e.pairs_per_domain + k:05d}",
                "domain": d,
                "grey": f"Grey Elephant {k + 1}",
                "pink": f"Pink Elephant {k + 1}",
                "grey_aliases": [],
                "pink_aliases": [],
                "kept": True,
                "split": None,
            }
            for i, d in enumerate(self._domains(ctx)["domain"])
            for k in range(e.pairs_per_domain)
        ]
        return split_pairs(pd.DataFrame(rows), e.test_fraction, ctx.config.seed)

    def preview(self, ctx: RunContext) -> dict[str, pd.DataFrame]:
        """The pairs the run can keep at most (a user's pairs, or placeholders); the other tables empty."""
        return {"elephants/pairs": self._planned_pairs(ctx)}

    def plan(self, ctx: RunContext) -> dict[str, list]:
        """Upper bounds: every requested pair kept, every plan and dialogue usable and cut at its last exchange."""
        from persona_lab.elephants import (
            dialogue_requests,
            judge_request,
            pair_requests,
            placeholder_plans,
            plan_requests,
            planned_dpf_requests,
            planned_eval_requests,
        )

        cfg = ctx.config
        e = cfg.elephants
        gen = cfg.llm.backend
        judge = self._judge_spec(ctx)
        out: dict[str, list] = {}

        def add(spec: str, requests: list) -> None:
            out.setdefault(spec, []).extend(requests)

        if e.pairs is None:
            add(
                gen,
                pair_requests(
                    self._domains(ctx),
                    pairs_per_domain=e.pairs_per_domain,
                    pairs_per_call=e.pairs_per_call,
                    temperature=e.temperature,
                    seed=cfg.seed,
                ),
            )
        pairs = self._planned_pairs(ctx)
        pairs = pairs[pairs["kept"].astype(bool)]
        add(
            gen,
            plan_requests(
                pairs,
                plans_per_pair=e.plans_per_pair,
                exchanges=e.exchanges,
                temperature=e.temperature,
                seed=cfg.seed,
            ),
        )
        plans = placeholder_plans(pairs, plans_per_pair=e.plans_per_pair, exchanges=e.exchanges)
        dialogues = dialogue_requests(
            plans, turn_max_tokens=e.turn_max_tokens, temperature=e.temperature, seed=cfg.seed
        )
        add(gen, dialogues)
        turn = " ".join(["word"] * e.turn_max_tokens)
        if e.judge_cut:
            add(judge, [judge_request(turn, "Pink Elephant") for _ in range(len(dialogues) * e.exchanges)])
        add(
            gen,
            planned_dpf_requests(
                pairs,
                plans_per_pair=e.plans_per_pair,
                exchanges=e.exchanges,
                turn_max_tokens=e.turn_max_tokens,
                single_call=e.single_call,
                max_tokens=e.dpf_max_tokens,
                temperature=cfg.llm.temperature,
                seed=cfg.seed,
            ),
        )
        if e.judge_revisions:
            add(judge, [judge_request(turn, "Pink Elephant") for _ in range(len(dialogues))])
        n_held = int((pairs["split"] == "test").sum()) * e.plans_per_pair
        if e.eval_limit is not None:
            n_held = min(n_held, e.eval_limit)
        for spec in self._eval_specs(ctx):
            replies, judges = planned_eval_requests(n_held, e.exchanges, e.turn_max_tokens, e.eval_max_tokens)
            add(spec, replies)
            add(judge, judges)
        return out

    # -- the run ---------------------------------------------------------------------------------------------
    def _runner(self, ctx: RunContext, spec: str | None = None) -> Any:
        def run(requests: Any, desc: str = "") -> list:
            return ctx.run_requests(requests, backend=spec, desc=desc) if requests else []

        return run

    def run(self, ctx: RunContext) -> StageResult:
        from persona_lab import charts
        from persona_lab.elephants import (
            cut_dialogues,
            dpo_table,
            eval_dialogues,
            evaluate_models,
            funnel_counts,
            generate_dialogues,
            generate_pairs,
            generate_plans,
            judge_agreement,
            kept_pairs,
            load_pairs,
            mention_rates,
            pairs_from_file,
            results_markdown,
            results_table,
            revise_dialogues,
            save_dataset,
        )

        cfg = ctx.config
        e = cfg.elephants
        run = self._runner(ctx)
        judge_spec = self._judge_spec(ctx)
        judge_run = self._runner(ctx, judge_spec)
        if e.pairs is not None:
            pairs = pairs_from_file(load_pairs(e.pairs), test_fraction=e.test_fraction, seed=cfg.seed)
        else:
            pairs = generate_pairs(
                self._domains(ctx),
                run,
                pairs_per_domain=e.pairs_per_domain,
                pairs_per_call=e.pairs_per_call,
                temperature=e.temperature,
                test_fraction=e.test_fraction,
                seed=cfg.seed,
            )
        kept = kept_pairs(pairs)
        plans = generate_plans(
            kept,
            run,
            plans_per_pair=e.plans_per_pair,
            exchanges=e.exchanges,
            temperature=e.temperature,
            seed=cfg.seed,
        )
        dialogues = generate_dialogues(
            plans, kept, run, turn_max_tokens=e.turn_max_tokens, temperature=e.temperature, seed=cfg.seed
        )
        dialogues = cut_dialogues(dialogues, judge_run, judge=e.judge_cut)
        dpf = revise_dialogues(
            dialogues,
            run,
            judge=e.judge_revisions,
            judge_run=judge_run,
            single_call=e.single_call,
            max_tokens=e.dpf_max_tokens,
            temperature=cfg.llm.temperature,
            seed=cfg.seed,
        )
        dpo = dpo_table(dpf)
        held = eval_dialogues(dialogues, e.eval_limit)
        specs = self._eval_specs(ctx)
        labels = {spec: self._model_label(ctx, spec) for spec in specs}
        evals = evaluate_models(
            held,
            {labels[s]: self._runner(ctx, s) for s in specs},
            judge_run,
            max_tokens=e.eval_max_tokens,
            temperature=cfg.llm.temperature,
        )
        rates = mention_rates(evals, list(labels.values()))
        agreement = judge_agreement(evals)
        results = results_table(rates, judge_model=judge_spec)
        funnel, dropped = funnel_counts(pairs, plans, dialogues, dpf)
        lines = self._subtitle(ctx, funnel, len(held), [judge_spec, *specs])
        ctx.console.print("elephants: " + "; ".join(lines))
        markdown = results_markdown(results, note=" ".join(lines))
        figures = {
            "elephants_mention_rates": charts.elephants_mention_rates_chart(results, subtitle=lines),
            "elephants_results_table": charts.elephants_results_table_chart(results, subtitle=lines),
        }
        return StageResult(
            tables={
                "elephants/pairs": pairs,
                "elephants/plans": plans,
                "elephants/dialogues": dialogues,
                "elephants/dpf": dpf,
                "elephants/dpo": dpo,
                "elephants/eval": evals,
                "elephants/results": results,
            },
            figures=figures,
            files={
                "elephants/results.md": lambda path: _write(path, markdown),
                "elephants/hf": lambda path: save_dataset(dpo, path),
            },
            summary={
                "elephants_funnel": funnel,
                "elephants_dropped": dropped,
                "elephants_eval": {
                    "held_out_dialogues": len(held),
                    "rates": _records(rates),
                    "agreement": _records(agreement),
                },
            },
            incomplete=self._incomplete(ctx, funnel, len(held), lines[0]),
        )

    def _incomplete(self, ctx: RunContext, funnel: dict[str, int], n_held: int, line: str) -> str:
        """Why the stage built nothing, or "": no DPO pair kept and no held-out dialogue evaluated (the embedded
        135M model gets there; its figure and funnel say at which step)."""
        if funnel["kept"] or n_held:
            return ""
        return f"no DPO pair and no held-out dialogue ({line}); see dropped_at, failure and raw in elephants/*.parquet"

    def _model_label(self, ctx: RunContext, spec: str) -> str:
        model = getattr(ctx.backend(spec), "model", "")
        return f"{spec} ({model})" if model and model not in spec else spec

    def _subtitle(self, ctx: RunContext, funnel: dict[str, int], n_held: int, specs: list[str]) -> list[str]:
        f = funnel
        lines = [
            f"funnel: {f['pairs']} pairs > {f['plans']} plans > {f['dialogues']} dialogues > {f['cut']} cut > "
            f"{f['revised']} revised > {f['kept']} kept DPO pairs",
            f"{n_held} held-out dialogue(s) evaluated"
            if n_held
            else "no held-out dialogue survived the cut: nothing to evaluate (paper rows only)",
        ]
        if any(_is_local(s) for s in specs):
            lines.append(LOCAL_NOTE)
        return lines


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]
