"""The feedback stage: PERSONA's persona-specific preference pairs by Direct Principle Feedback (Sec. 3.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.pipeline import RunContext, StageResult


def _principle_files() -> tuple[Path, ...]:
    from persona_lab.dpf import load_principle

    return load_principle("persona").files


def _template_files() -> tuple[Path, ...]:
    from persona_lab.feedback import template_files

    return (*_principle_files(), *template_files())


class FeedbackStage:
    """PERSONA Sec. 3.3: originals, critiques and revisions per (persona, prompt), verified by role-play."""

    name = "feedback"
    reads = ("personas", "prompts")
    writes = ("feedback",)
    config = ("feedback", "seed", "llm.backend", "llm.temperature")

    @property
    def templates(self) -> tuple[Path, ...]:
        return _template_files()

    # -- inputs ---------------------------------------------------------------------------------------------
    def pairs_plan(self, ctx: RunContext) -> Any:
        """The sampling plan of this run with persona and prompt texts (``FeedbackInputs``); calls nothing."""
        from persona_lab.feedback import (
            attach_texts,
            pair_sizes,
            prompt_pools,
            sampling_plan,
            select_personas,
        )

        cfg = ctx.config
        personas = ctx.table("personas")
        prompts = ctx.table("prompts")
        train, heldout = prompt_pools(prompts)
        plan = sampling_plan(
            select_personas(personas, cfg.feedback.n_personas),
            train,
            heldout,
            seed=cfg.seed,
            sizes=pair_sizes(cfg),
        )
        return attach_texts(plan, personas, prompts)

    def check(self, cfg: Any) -> set[str]:
        """The sizes must ask for at least one pair; the verifier's backend spec must parse."""
        from persona_lab.llm import parse_spec

        fb = cfg.feedback
        if fb.pairs_train + fb.pairs_test_seen + fb.pairs_test_unseen == 0:
            raise PersonaLabError(
                "feedback.pairs_train, pairs_test_seen and pairs_test_unseen are all 0: ask for at least one pair"
            )
        if fb.verify and fb.verifier:
            parse_spec(fb.verifier)
            return {fb.verifier}
        return set()

    def preview(self, ctx: RunContext) -> dict[str, pd.DataFrame]:
        """The planned pairs with empty texts (no LLM call)."""
        from persona_lab.feedback import FEEDBACK_COLUMNS

        plan = self.pairs_plan(ctx).plan
        table = pd.DataFrame({c: plan[c] if c in plan.columns else None for c in FEEDBACK_COLUMNS})
        table["failure"] = ""
        return {"feedback": table}

    def plan(self, ctx: RunContext) -> list | dict[str, list]:
        from persona_lab.feedback import plan_requests

        cfg = ctx.config
        by_role = plan_requests(self.pairs_plan(ctx), cfg)
        generation = by_role["originals"] + by_role["dpf"]
        verifier = cfg.feedback.verifier
        if verifier and verifier != cfg.llm.backend:
            return {cfg.llm.backend: generation, verifier: by_role["verification"]}
        return generation + by_role["verification"]

    # -- the run --------------------------------------------------------------------------------------------
    def run(self, ctx: RunContext) -> StageResult:
        from persona_lab import charts
        from persona_lab.feedback import (
            PAPER_VERIFICATION_RATE,
            describe_plan,
            dpo_writer,
            failure_counts,
            generate_feedback,
            hf_writer,
            length_summary,
            pairs_only,
            position_bias,
            rate_by_group,
            verification_rate,
        )

        cfg = ctx.config
        fb = cfg.feedback
        inputs = self.pairs_plan(ctx)
        counts = describe_plan(inputs.plan, cfg)
        ctx.console.print(
            f"feedback: {counts['pairs']:,} pairs planned ({counts['personas']:,} personas x "
            f"{counts['pairs_per_persona']}; {counts['by_split']}), {counts['prompts']:,} originals, "
            f"{counts['calls_per_pair']:.3f} calls per pair"
        )
        verifier = fb.verifier or None

        def verify_run(requests: list, desc: str = "") -> list:
            return ctx.run_requests(requests, backend=verifier, desc=desc)

        feedback = generate_feedback(inputs, cfg, ctx.run_requests, verify_run=verify_run)
        personas = ctx.table("personas")
        pairs = pairs_only(feedback)
        failures = failure_counts(feedback)
        rate = verification_rate(feedback, n_boot=fb.bootstrap, seed=cfg.seed)
        first = position_bias(feedback, n_boot=fb.bootstrap, seed=cfg.seed)
        groups = rate_by_group(feedback, personas, fb.groups, n_boot=fb.bootstrap, seed=cfg.seed)
        made = {
            "originals": int(feedback.drop_duplicates("prompt_id")["original"].notna().sum()),
            "pairs": len(pairs),
            "by_split": {s: int((pairs["split"] == s).sum()) for s in ("train", "test_seen", "test_unseen")},
        }
        ctx.console.print(
            f"feedback: {len(pairs):,} pairs of {len(feedback):,} planned; failures {failures or 'none'}; "
            f"revision chosen {rate.share:.1%} of {rate.n} verified (PERSONA: {PAPER_VERIFICATION_RATE:.0%})"
            if rate.n
            else f"feedback: {len(pairs):,} pairs of {len(feedback):,} planned; failures {failures or 'none'}"
        )
        incomplete = ""
        if pairs.empty:
            reasons = failure_counts(feedback, detail=True)
            top = ", ".join(f"{reason} ({n})" for reason, n in list(reasons.items())[:2]) or "none"
            incomplete = (
                f"no feedback pair was produced: all {len(feedback):,} planned pairs failed (most often: {top}); "
                "see feedback.parquet's failure and raw columns"
            )
        return StageResult(
            tables={"feedback": feedback},
            figures={
                "feedback_length_bias": charts.feedback_length_bias_chart(
                    feedback, backend=cfg.llm.backend, n_boot=fb.bootstrap, seed=cfg.seed
                )
            },
            files={
                "dpo.parquet": dpo_writer(feedback, personas),
                "hf/feedback": hf_writer(feedback, personas),
            },
            summary={
                "feedback": {
                    "plan": counts,
                    "made": made,
                    "failures": failures,
                    "failure_reasons": failure_counts(feedback, detail=True),
                    "verification_rate": rate.to_dict(),
                    "paper_verification_rate": PAPER_VERIFICATION_RATE,
                    "position_bias_first_shown_wins": first.to_dict(),
                    "verification_by_group": groups.to_dict("records"),
                    "length": length_summary(feedback),
                    "verifier": verifier or cfg.llm.backend,
                }
            },
            incomplete=incomplete,
        )
