"""The agreement stage: model annotators and human labels on the study's feedback pairs, Cohen's kappa panels,
per-group kappas, the regression of agreement on persona attributes, the leave-one-out analysis; Figs. 5-9."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.pipeline import RunContext, StageResult

_HERE = Path(__file__).resolve().parents[1] / "agreement"


def _principle_files() -> tuple[Path, ...]:
    from persona_lab.dpf import load_principle

    return load_principle("persona").files


class AgreementStage:
    """PERSONA Sec. 4: do models role-playing a persona choose as the people role-playing it do?"""

    name = "agreement"
    reads = ("personas", "prompts", "feedback")
    writes = (
        "judgments",
        "agreement/study",
        "agreement/votes",
        "agreement/kappa",
        "agreement/groups",
        "agreement/regression",
        "agreement/disagreements",
        "agreement/loo_pairs",
        "agreement/loo_revisions",
        "agreement/loo_judgments",
        "agreement/loo_kappa",
    )
    config = ("agreement", "seed", "llm.backend")

    @property
    def templates(self) -> tuple[Path, ...]:
        return (_HERE / "judge.txt", _HERE / "judge_choice.txt", *_principle_files())

    # -- configuration -----------------------------------------------------------------------------------------
    def check(self, cfg: Any) -> set[str]:
        """Annotators distinct and meaningful, votes attainable, the reference and attributes known; returns the
        annotators' backend specs."""
        from persona_lab.agreement import check_attributes, model_annotators
        from persona_lab.llm import parse_spec

        ag = cfg.agreement
        annotators = model_annotators(cfg)
        if ag.min_votes > ag.raters_per_persona:
            raise PersonaLabError(
                f"agreement.min_votes = {ag.min_votes} exceeds agreement.raters_per_persona = "
                f"{ag.raters_per_persona}: no question could get the people's label"
            )
        labels = [a.label for a in annotators]
        if ag.reference != "human" and ag.reference not in labels:
            raise PersonaLabError(
                f"agreement.reference = {ag.reference!r}: expected 'human' or one of the annotators {labels}"
            )
        check_attributes(ag.loo_attributes)
        for path in ag.human_csv:
            if not Path(path).is_file():
                raise PersonaLabError(
                    f"agreement.human_csv: {path} does not exist; give the annotation CSV's path"
                )
        for a in annotators:
            parse_spec(a.backend)
        return {a.backend for a in annotators}

    # -- inputs ------------------------------------------------------------------------------------------------
    def _feedback(self, ctx: RunContext) -> pd.DataFrame:
        """The feedback table; in a dry run, the feedback stage's preview with placeholder texts as long as its
        output budgets (so the plan bounds the real run's tokens)."""
        feedback = ctx.table("feedback")
        if not ctx.dry_run:
            return feedback
        fb = ctx.config.feedback
        filled = feedback.copy()
        for column, budget in (("original", fb.original_max_tokens), ("revision", fb.revision_max_tokens)):
            placeholder = ("the " * budget).strip()
            filled[column] = filled[column].astype(object).where(filled[column].notna(), placeholder)
        return filled

    def _study(self, ctx: RunContext) -> pd.DataFrame:
        from persona_lab.agreement import study_design

        ag = ctx.config.agreement
        return study_design(
            self._feedback(ctx),
            ctx.table("prompts"),
            n_personas=ag.n_personas,
            n_questions=ag.n_questions,
            seed=ctx.config.seed,
            split=ag.split,
        )

    def _loo_annotator(self, ctx: RunContext) -> Any:
        from persona_lab.agreement import ModelAnnotator

        cfg = ctx.config
        return ModelAnnotator(
            label="twin",
            backend=cfg.llm.backend,
            temperature=0.0,
            justify=cfg.agreement.loo_justify,
            max_tokens=cfg.agreement.judge_max_tokens,
        )

    def preview(self, ctx: RunContext) -> dict[str, pd.DataFrame]:
        """No later stage reads the agreement tables; the preview is an empty judgments table."""
        from persona_lab.agreement import JUDGMENT_COLUMNS

        return {"judgments": pd.DataFrame(columns=list(JUDGMENT_COLUMNS))}

    def plan(self, ctx: RunContext) -> dict[str, list]:
        from persona_lab.agreement import loo_plan, model_annotators, plan_study

        cfg = ctx.config
        ag = cfg.agreement
        by_backend = plan_study(self._study(ctx), ctx.table("personas"), model_annotators(cfg))
        if ag.loo_pairs:
            loo = loo_plan(
                ctx.table("personas"),
                self._feedback(ctx),
                ctx.table("prompts"),
                self._loo_annotator(ctx),
                attributes=ag.loo_attributes,
                n_pairs=ag.loo_pairs,
                n_questions=ag.loo_questions,
                base_size=ag.loo_base_attributes,
                max_tokens=ag.loo_max_tokens,
                seed=cfg.seed,
            )
            by_backend.setdefault(cfg.llm.backend, []).extend(loo)
        return by_backend

    # -- the run -----------------------------------------------------------------------------------------------
    def run(self, ctx: RunContext) -> StageResult:
        from persona_lab import agreement as ag_lib
        from persona_lab import charts

        cfg = ctx.config
        ag = cfg.agreement
        personas = ctx.table("personas")
        annotators = ag_lib.model_annotators(cfg)
        labels = [a.label for a in annotators]
        study = self._study(ctx)
        humans = ag_lib.human_judgments(ctx.run_dir, study, csv_paths=ag.human_csv, app=ag.app_annotations)
        models = ag_lib.judge_study(study, personas, annotators, ctx.run_requests)
        judgments = pd.concat([humans, models], ignore_index=True) if len(humans) else models
        order = list(pd.unique(study["persona_id"].astype(str)))
        panels = ag_lib.kappa_panels(
            judgments,
            order,
            labels,
            min_votes=ag.min_votes,
            n_boot=ag.n_bootstrap,
            level=ag.ci_level,
            seed=cfg.seed,
        )
        votes = ag_lib.human_votes(judgments, min_votes=ag.min_votes) if len(humans) else None
        reference = ag_lib.reference_labels(judgments, labels, reference=ag.reference, min_votes=ag.min_votes)
        groups_table = charts.persona_groups(personas)
        groups = ag_lib.group_kappas(
            judgments,
            reference,
            groups_table,
            ag.groups,
            labels,
            n_boot=ag.n_bootstrap,
            level=ag.ci_level,
            seed=cfg.seed,
        )
        regression = ag_lib.agreement_regression(
            judgments, reference, groups_table, ag.groups, level=ag.ci_level
        )
        drill = ag_lib.disagreements(judgments, reference, study)
        loo = ag_lib.leave_one_out(
            personas,
            ctx.table("feedback"),
            ctx.table("prompts"),
            self._loo_annotator(ctx),
            ctx.run_requests,
            attributes=ag.loo_attributes,
            n_pairs=ag.loo_pairs,
            n_questions=ag.loo_questions,
            base_size=ag.loo_base_attributes,
            max_tokens=ag.loo_max_tokens,
            n_boot=ag.n_bootstrap,
            level=ag.ci_level,
            seed=cfg.seed,
        )
        figures = self._figures(cfg, annotators, panels, loo, groups, reference)
        summary = self._summary(
            cfg, study, judgments, humans, panels, votes, reference, groups, regression, loo
        )
        self._report(ctx, summary)
        incomplete = ""
        if study.empty:
            incomplete = (
                "no usable feedback pair (failure == ''): the study is empty; see feedback.parquet's failures"
            )
        elif len(models) and not (models["failure"] == "").any():
            incomplete = "every model judgment failed; see judgments.parquet's failure and raw columns"
        tables = {
            "judgments": judgments,
            "agreement/study": study,
            "agreement/votes": votes
            if votes is not None
            else ag_lib.majority_vote(judgments.iloc[:0], min_votes=ag.min_votes, choices=ag_lib.CHOICES),
            "agreement/kappa": panels.table,
            "agreement/groups": groups,
            "agreement/regression": self._regression_table(regression),
            "agreement/disagreements": drill,
            "agreement/loo_pairs": loo.pairs,
            "agreement/loo_revisions": loo.revisions,
            "agreement/loo_judgments": loo.judgments,
            "agreement/loo_kappa": loo.kappa,
        }
        return StageResult(
            tables=tables, figures=figures, summary={"agreement": summary}, incomplete=incomplete
        )

    # -- outputs -----------------------------------------------------------------------------------------------
    @staticmethod
    def _regression_table(regression: Any) -> pd.DataFrame:
        """The odds ratios with the fit's size, formula and note on every row; a fit that could not be made is
        one row that says why."""
        table = regression.table
        if table.empty:
            table = pd.DataFrame({c: [np.nan] for c in table.columns}).astype({"term": object})
            table["term"] = None
        return table.assign(n=regression.n, formula=regression.formula, note=regression.note)

    @staticmethod
    def _who(annotators: list) -> str:
        backends = {a.backend for a in annotators}
        if len(annotators) > 1 and len(backends) == 1:
            kinds = "temperatures" if len({a.temperature for a in annotators}) > 1 else "samplings"
            return (
                f"model annotators: {len(annotators)} {kinds} of one model ({next(iter(backends))}), "
                "so model vs model is the model against itself"
            )
        return "model annotators: " + ", ".join(a.describe() for a in annotators)

    def _figures(
        self, cfg: Any, annotators: list, panels: Any, loo: Any, groups: pd.DataFrame, reference: Any
    ) -> dict:
        from persona_lab import charts
        from persona_lab.charts import caveat_subtitle as subtitle_for

        backend = cfg.llm.backend
        local = (
            any(a.backend.split(":")[0] == "local" for a in annotators) or backend.split(":")[0] == "local"
        )
        caveat_backend = "local" if local else backend
        who = self._who(annotators)
        people = "people: majority vote" if panels.has_human else "no human labels in this run"
        hm = [*panels.human_vs_model(), "people vs people"]
        mm = panels.model_vs_model()
        mm_missing: tuple[str, ...] = ("Only one model annotator:", "add another to agreement.annotators.")
        hm_missing: tuple[str, ...] = charts.NO_HUMAN_LABELS
        if not panels.personas:
            mm_missing = charts.NO_STUDY_PAIRS if mm else mm_missing
            hm_missing = (*charts.NO_STUDY_PAIRS, "No human labels in this run either.")
        loo_sub = (
            f"{cfg.agreement.loo_base_attributes} vs {cfg.agreement.loo_base_attributes}+1 attributes, "
            f"{cfg.agreement.loo_questions} questions per pair; annotator: {backend}"
        )
        return {
            "fig05_leave_one_out": charts.leave_one_out_chart(
                loo.kappa,
                eligible=loo.eligible if cfg.agreement.loo_pairs else None,
                subtitle=subtitle_for(caveat_backend, loo_sub),
            ),
            "fig06_kappa_human_vs_model": charts.kappa_heatmaps_figure(
                panels.table,
                hm,
                panels.personas,
                title="Cohen's kappa, people vs model role-playing the personas (Fig. 6)",
                subtitle=subtitle_for(caveat_backend, f"{who}; {people}"),
                missing=hm_missing,
            ),
            "fig07_kappa_human_vs_model_hist": charts.kappa_histograms_figure(
                panels.table,
                hm,
                title="Kappas of Fig. 6 (Fig. 7)",
                subtitle=subtitle_for(caveat_backend, f"{who}; {people}"),
                missing=hm_missing,
            ),
            "fig08_kappa_model_vs_model": charts.kappa_heatmaps_figure(
                panels.table,
                mm or ["model vs model"],
                panels.personas,
                title="Cohen's kappa between model annotators (Fig. 8)",
                subtitle=subtitle_for(caveat_backend, who),
                missing=mm_missing,
            ),
            "fig09_kappa_model_vs_model_hist": charts.kappa_histograms_figure(
                panels.table,
                mm or ["model vs model"],
                title="Kappas of Fig. 8 (Fig. 9)",
                subtitle=subtitle_for(caveat_backend, who),
                missing=mm_missing,
            ),
            "agreement_group_kappa": charts.group_kappa_chart(
                groups, subtitle=subtitle_for(caveat_backend, f"reference: {reference.note}")
            ),
        }

    def _summary(
        self,
        cfg: Any,
        study: pd.DataFrame,
        judgments: pd.DataFrame,
        humans: pd.DataFrame,
        panels: Any,
        votes: pd.DataFrame | None,
        reference: Any,
        groups: pd.DataFrame,
        regression: Any,
        loo: Any,
    ) -> dict:
        from persona_lab import agreement as ag_lib

        models = judgments[judgments["kind"] == "model"]
        per_annotator = {}
        for label, g in models.groupby("annotator", sort=False):
            ok = g[g["failure"] == ""]
            first = [o.split(",")[0] == c for o, c in zip(ok["order_shown"], ok["choice"], strict=True)]
            per_annotator[str(label)] = {
                "judgments": len(g),
                "failures": int((g["failure"] != "").sum()),
                "failure_kinds": g.loc[g["failure"] != "", "failure"]
                .str.split(":")
                .str[0]
                .value_counts()
                .to_dict(),
                "revision_chosen": float((ok["choice"] == "revision").mean()) if len(ok) else None,
                "first_shown_chosen": float(np.mean(first)) if first else None,
            }
        diag = panels.table[panels.table["same_persona"]] if len(panels.table) else panels.table
        by_panel = {}
        for name, g in diag.groupby("panel", sort=False) if len(diag) else []:
            k = g["kappa"].astype(float)
            by_panel[str(name)] = {
                "mean_same_persona_kappa": float(k[np.isfinite(k)].mean()) if np.isfinite(k).any() else None,
                "defined": int(np.isfinite(k).sum()),
                "personas": len(g),
            }
        overall = groups[groups["grouping"] == "All"] if len(groups) else groups
        crosscheck = {}
        ref = reference.labels.set_index(["persona_id", "prompt_id"])["choice"]
        for label in overall["annotator"] if len(overall) else []:
            mine = models[(models["annotator"] == label) & (models["failure"] == "")]
            mine = mine.set_index(["persona_id", "prompt_id"])["choice"]
            shared = mine.index.intersection(ref.index)
            ours = ag_lib.cohen_kappa(list(mine.loc[shared]), list(ref.loc[shared]))
            sm = ag_lib.statsmodels_kappa(list(mine.loc[shared]), list(ref.loc[shared]))
            crosscheck[str(label)] = {
                "kappa": ours,
                "statsmodels_kappa": sm.kappa,
                "statsmodels_ci": [sm.low, sm.high],
            }
        fleiss = {}
        good_h = humans[humans["failure"] == ""] if len(humans) else humans
        for persona, g in good_h.groupby("persona_id") if len(good_h) else []:
            labels = pd.DataFrame({"rater": g["annotator"], "item": g["prompt_id"], "choice": g["choice"]})
            k, n = ag_lib.fleiss_kappa(labels)
            fleiss[str(persona)] = {
                "fleiss_kappa": k,
                "items": n,
                "annotators": int(g["annotator"].nunique()),
            }
        out: dict[str, Any] = {
            "study": {
                "personas": int(study["persona_id"].nunique()) if len(study) else 0,
                "pairs": len(study),
            },
            "human_annotators": int(humans["annotator"].nunique()) if len(humans) else 0,
            "human_labels": len(humans),
            "votes": ag_lib.vote_summary(votes) if votes is not None else None,
            "annotators": per_annotator,
            "panels": by_panel,
            "reference": reference.note,
            "kappa_vs_reference": overall[["annotator", "kappa", "low", "high", "n_items", "reason"]].to_dict(
                "records"
            )
            if len(overall)
            else [],
            "statsmodels_crosscheck": crosscheck,
            "fleiss_kappa_per_persona": fleiss,
            "regression": {"n": regression.n, "formula": regression.formula, "note": regression.note},
        }
        k = loo.kappa
        out["leave_one_out"] = {
            "pairs": len(loo.pairs),
            "eligible_personas": loo.eligible,
            "revisions_failed": int((loo.revisions["failure"] != "").sum()),
            "revisions": len(loo.revisions),
            "judgments_failed": int((loo.judgments["failure"] != "").sum()),
            "kappas_defined": int(np.isfinite(k["kappa"].astype(float)).sum()) if len(k) else 0,
            "median_kappa": {
                str(a): float(g["kappa"].astype(float).median())
                if np.isfinite(g["kappa"].astype(float)).any()
                else None
                for a, g in (k.groupby("attribute", sort=False) if len(k) else [])
            },
        }
        return out

    @staticmethod
    def _report(ctx: RunContext, summary: dict) -> None:
        c = ctx.console
        s = summary["study"]
        c.print(
            f"agreement: study {s['personas']} personas, {s['pairs']} pairs; {summary['human_labels']} human labels "
            f"from {summary['human_annotators']} people"
        )
        for label, a in summary["annotators"].items():
            c.print(
                f"agreement: {label}: {a['judgments']} judgments, {a['failures']} failures {a['failure_kinds']}"
            )
        for name, p in summary["panels"].items():
            c.print(
                f"agreement: {name}: mean same-persona kappa {p['mean_same_persona_kappa']} ({p['defined']} defined)"
            )
        if "leave_one_out" in summary:
            lo = summary["leave_one_out"]
            c.print(
                f"agreement: leave-one-out {lo['pairs']} pairs, {lo['revisions_failed']} of {lo['revisions']} revisions "
                f"failed, {lo['kappas_defined']} kappas defined"
            )
