"""Agreement between people and models: the kappa panels of Figs. 6-9, per-group kappas, disagreements and a
logistic regression of agreement on persona attributes (PERSONA, Castricato et al. 2024, Sec. 4).

**The panels.** PERSONA Fig. 6 shows, per model, a persona x persona heatmap of Cohen's kappa between the
people's and the model's choices (upper triangle, one colour scale), plus a human-vs-human panel as the ceiling;
Figs. 8-9 do the same between models. The paper does not define the cells. Here the raters are personas and the
items are questions (``prompt_id``), and:

- **people vs model** (Fig. 6): cell (i, j) is the kappa between the people's label for persona i (the
  majority vote of its annotators, :func:`persona_lab.agreement.majority_vote`) and the model role-playing
  persona j, pooled with the mirror pair (people j, model i) so the matrix is symmetric
  (:meth:`KappaCounts.symmetric`). The diagonal is the headline: model and people role-playing the *same*
  persona. Off the diagonal, a model that merely agrees with everyone scores as high as on the diagonal.
- **people vs people** (the ceiling): cell (i, j) pools every pair of *individual* annotators, one of persona i
  and one of persona j (never an annotator with itself); the diagonal is the agreement among the people who
  role-played the same persona. (Majority labels would make the diagonal trivially 1.)
- **model vs model** (Fig. 8): as people vs model, with a second model annotator in the people's place.

Every cell has a percentile bootstrap interval over questions. With no human labels in a run the people panels
are empty and the figures say so.

**Reference labels.** Per-group kappas, disagreements and the regression compare each model annotator with a
reference: the people's majority label by default, or a named annotator (``agreement.reference``); without any
human label, the first model annotator, labelled as such.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from persona_lab.agreement._bootstrap import bootstrap_intervals, with_intervals
from persona_lab.agreement._kappa import KappaCounts, KappaDesign
from persona_lab.agreement._votes import MAJORITY, majority_vote
from persona_lab.errors import PersonaLabError

PEOPLE = "people"
"""The name of the people's (majority) labels in panels and tables."""

PANEL_COLUMNS = (
    "panel",
    "kind",
    "rater_a",
    "rater_b",
    "persona_a",
    "persona_b",
    "same_persona",
    "kappa",
    "low",
    "high",
    "defined",
    "n_items",
    "observed",
    "reason",
)
"""Columns of :attr:`KappaPanels.table`: one row per cell of the upper triangle (diagonal included)."""

HUMAN_VS_MODEL = "people vs model"
HUMAN_VS_HUMAN = "people vs people"
MODEL_VS_MODEL = "model vs model"


def good_judgments(judgments: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The judgments of ``kind`` (``human`` or ``model``) that have a label (no failure)."""
    ok = (judgments["kind"] == kind) & judgments["choice"].notna() & (judgments["failure"].fillna("") == "")
    return judgments[ok]


def human_votes(judgments: pd.DataFrame, *, min_votes: int) -> pd.DataFrame:
    """The people's majority vote per (persona, question) (:func:`majority_vote`; ties reported, no label)."""
    from persona_lab.agreement._study import CHOICES

    return majority_vote(good_judgments(judgments, "human"), min_votes=min_votes, choices=CHOICES)


def _as_labels(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rater": df["persona_id"].to_numpy(),
            "item": df["prompt_id"].to_numpy(),
            "choice": df["choice"].to_numpy(),
        }
    )


@dataclass(frozen=True)
class KappaPanels:
    """The persona x persona kappa panels of one run.

    Attributes:
        table: one row per upper-triangle cell of every panel (:data:`PANEL_COLUMNS`).
        personas: the persona order of every panel (the study's).
        annotators: the model annotators, in configuration order.
        has_human: whether the run has human labels (else the people panels are absent from ``table``).
        notes: panel -> a note on how it was made or why it is empty.
    """

    table: pd.DataFrame
    personas: tuple[str, ...]
    annotators: tuple[str, ...]
    has_human: bool
    notes: dict[str, str] = field(default_factory=dict)

    def human_vs_model(self) -> list[str]:
        """Panel names of Fig. 6 (one per model annotator), in order."""
        return [f"{PEOPLE} vs {a}" for a in self.annotators]

    def model_vs_model(self) -> list[str]:
        """Panel names of Fig. 8 (one per pair of model annotators), in order."""
        return [f"{a} vs {b}" for i, a in enumerate(self.annotators) for b in self.annotators[i + 1 :]]


def _panel(
    design: KappaDesign,
    pool,
    *,
    name: str,
    kind: str,
    rater_a: str,
    rater_b: str,
    n_boot: int,
    level: float,
    seed: int,
) -> pd.DataFrame:
    matrix = pool(design.counts()).matrix()
    intervals = bootstrap_intervals(design, pool=pool, n_boot=n_boot, level=level, seed=seed)
    cells = with_intervals(matrix, intervals, upper=True, diagonal=True)
    cells = cells.rename(columns={"rater_a": "persona_a", "rater_b": "persona_b"})
    cells.insert(0, "panel", name)
    cells.insert(1, "kind", kind)
    cells.insert(2, "rater_a", rater_a)
    cells.insert(3, "rater_b", rater_b)
    cells["same_persona"] = cells["persona_a"] == cells["persona_b"]
    return cells[list(PANEL_COLUMNS)]


def kappa_panels(
    judgments: pd.DataFrame,
    personas: Sequence[str],
    annotators: Sequence[str],
    *,
    min_votes: int,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> KappaPanels:
    """Every panel of Figs. 6-9 from the run's judgments (see the module docstring).

    Args:
        judgments: the judgments table (human and model rows).
        personas: the study's personas, in panel order.
        annotators: the model annotators' labels, in order.
        min_votes: votes the people's label needs (PERSONA: 3 of 4).
        n_boot: bootstrap replicates per panel.
        level: interval coverage.
        seed: bootstrap seed.
    """
    order = [str(p) for p in personas]
    models = good_judgments(judgments, "model")
    humans = good_judgments(judgments, "human")
    humans = humans[humans["persona_id"].isin(order)]
    panels: list[pd.DataFrame] = []
    notes: dict[str, str] = {}
    symmetric = KappaCounts.symmetric
    votes = human_votes(judgments, min_votes=min_votes) if len(humans) else pd.DataFrame()
    labelled = votes[votes["status"] == MAJORITY] if len(votes) else votes
    has_human = len(labelled) > 0
    for a in annotators:
        name = f"{PEOPLE} vs {a}"
        if not has_human:
            notes[name] = "no human labels in this run"
            continue
        design = KappaDesign(
            _as_labels(labelled), _as_labels(models[models["annotator"] == a]), raters_a=order, raters_b=order
        )
        panels.append(
            _panel(
                design,
                symmetric,
                name=name,
                kind=HUMAN_VS_MODEL,
                rater_a=PEOPLE,
                rater_b=a,
                n_boot=n_boot,
                level=level,
                seed=seed,
            )
        )
        notes[name] = f"people: majority of at least {min_votes} votes per question; symmetric pooled kappa"
    if len(humans):
        # one rater per (annotator, persona): a person who role-played two personas is two raters, never
        # paired with themself
        keys = humans["annotator"].astype(str) + "\x1f" + humans["persona_id"].astype(str)
        individual = pd.DataFrame(
            {
                "rater": keys.to_numpy(),
                "item": humans["prompt_id"].to_numpy(),
                "choice": humans["choice"].to_numpy(),
            }
        )
        raters = [k for p in order for k in pd.unique(keys[humans["persona_id"] == p])]
        design = KappaDesign(individual, raters_a=raters)
        ordered = {k: k.split("\x1f", 1)[1] for k in raters}
        person = {k: k.split("\x1f", 1)[0] for k in raters}

        def by_persona(counts: KappaCounts) -> KappaCounts:
            return counts.grouped(ordered, exclude_self=True, identity=person)

        panels.append(
            _panel(
                design,
                by_persona,
                name=HUMAN_VS_HUMAN,
                kind=HUMAN_VS_HUMAN,
                rater_a=PEOPLE,
                rater_b=PEOPLE,
                n_boot=n_boot,
                level=level,
                seed=seed,
            )
        )
        notes[HUMAN_VS_HUMAN] = (
            "every pair of individual annotators (never one with itself), pooled per persona pair"
        )
    else:
        notes[HUMAN_VS_HUMAN] = "no human labels in this run"
    for i, a in enumerate(annotators):
        for b in annotators[i + 1 :]:
            name = f"{a} vs {b}"
            design = KappaDesign(
                _as_labels(models[models["annotator"] == a]),
                _as_labels(models[models["annotator"] == b]),
                raters_a=order,
                raters_b=order,
            )
            panels.append(
                _panel(
                    design,
                    symmetric,
                    name=name,
                    kind=MODEL_VS_MODEL,
                    rater_a=a,
                    rater_b=b,
                    n_boot=n_boot,
                    level=level,
                    seed=seed,
                )
            )
            notes[name] = "symmetric pooled kappa"
    table = pd.concat(panels, ignore_index=True) if panels else pd.DataFrame(columns=list(PANEL_COLUMNS))
    # persona ids as given in the study order (the panel index may carry another dtype)
    for col in ("persona_a", "persona_b"):
        table[col] = table[col].astype(str)
    return KappaPanels(table, tuple(order), tuple(annotators), has_human, notes)


# -- reference labels ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """The labels model annotators are compared with.

    Attributes:
        name: ``people`` or an annotator's label.
        labels: ``persona_id, prompt_id, choice`` (one per item).
        note: how it was chosen (e.g. "no human labels: the first model annotator").
    """

    name: str
    labels: pd.DataFrame
    note: str


def reference_labels(
    judgments: pd.DataFrame, annotators: Sequence[str], *, reference: str = "human", min_votes: int = 3
) -> Reference:
    """The reference for per-group kappas, disagreements and the regression (see the module docstring).

    Raises:
        PersonaLabError: ``reference`` names no model annotator (and is not ``human``).
    """
    models = good_judgments(judgments, "model")
    if reference == "human":
        votes = (
            human_votes(judgments, min_votes=min_votes) if len(good_judgments(judgments, "human")) else None
        )
        if votes is not None and (votes["status"] == MAJORITY).any():
            labels = votes.loc[votes["status"] == MAJORITY, ["persona_id", "prompt_id", "choice"]]
            return Reference(
                PEOPLE, labels.reset_index(drop=True), f"the people's majority of {min_votes}+ votes"
            )
        if not annotators:
            return Reference(PEOPLE, pd.DataFrame(columns=["persona_id", "prompt_id", "choice"]), "no labels")
        first = annotators[0]
        labels = models.loc[models["annotator"] == first, ["persona_id", "prompt_id", "choice"]]
        return Reference(
            first, labels.reset_index(drop=True), f"no human labels: the first model annotator ({first})"
        )
    if reference not in annotators:
        raise PersonaLabError(
            f"agreement.reference = {reference!r}: expected 'human' or one of the annotators {list(annotators)}"
        )
    labels = models.loc[models["annotator"] == reference, ["persona_id", "prompt_id", "choice"]]
    return Reference(reference, labels.reset_index(drop=True), f"the annotator {reference}")


# -- per-group kappa -----------------------------------------------------------------------------------------------
GROUP_COLUMNS = (
    "annotator",
    "reference",
    "grouping",
    "group",
    "n_personas",
    "n_items",
    "kappa",
    "low",
    "high",
    "observed",
    "reason",
)
"""Columns of :func:`group_kappas`."""

ALL_PERSONAS = "all personas"


def group_kappas(
    judgments: pd.DataFrame,
    reference: Reference,
    groups: pd.DataFrame,
    groupings: Sequence[str],
    annotators: Sequence[str],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Cohen's kappa of each model annotator with the reference, over all items and per persona group.

    Items are (persona, question) pairs; a group's kappa uses the items of its personas. Intervals come from
    one bootstrap over all the study's items (so a group's number of items varies between replicates).

    Args:
        judgments: the judgments table.
        reference: from :func:`reference_labels`.
        groups: ``persona_id`` and one column per grouping (``persona_lab.charts.persona_groups``).
        groupings: the group columns to use (``agreement.groups``); unknown ones raise.
        annotators: model annotators to compare (the reference itself is skipped).
    """
    unknown = [g for g in groupings if g not in groups.columns]
    if unknown:
        raise PersonaLabError(
            f"agreement.groups: {unknown} are not persona groupings; choose from "
            f"{[c for c in groups.columns if c != 'persona_id']}"
        )
    models = good_judgments(judgments, "model")
    ref = reference.labels
    group_of = groups.drop_duplicates("persona_id").set_index("persona_id")
    keys: list[tuple[str, str, str]] = []
    rows_a: list[Any] = []
    rows_b: list[Any] = []
    for a in annotators:
        if a == reference.name:
            continue
        mine = models[models["annotator"] == a]
        for grouping in [None, *groupings]:
            if grouping is None:
                levels = {ALL_PERSONAS: set(group_of.index)}
            else:
                col = group_of[grouping].dropna()
                levels = {str(v): set(col.index[col == v]) for v in pd.unique(col)}
            for level_name, members in levels.items():
                key = (a, grouping or "All", level_name)
                name = "\x1f".join(key)
                keys.append(key)
                for df, out in ((mine, rows_a), (ref, rows_b)):
                    sel = df[df["persona_id"].isin(members)]
                    out.append(
                        pd.DataFrame(
                            {
                                "rater": name,
                                "item": (
                                    sel["persona_id"].astype(str) + "/" + sel["prompt_id"].astype(str)
                                ).to_numpy(),
                                "choice": sel["choice"].to_numpy(),
                            }
                        )
                    )
    if not keys:
        return pd.DataFrame(columns=list(GROUP_COLUMNS))
    names = ["\x1f".join(k) for k in keys]
    design = KappaDesign(
        pd.concat(rows_a, ignore_index=True),
        pd.concat(rows_b, ignore_index=True),
        raters_a=names,
        raters_b=names,
    )
    matrix = design.counts().matrix()
    intervals = bootstrap_intervals(design, n_boot=n_boot, level=level, seed=seed)
    idx = np.arange(len(names))
    n_personas = []
    for _annotator, grouping, level_name in keys:
        if grouping == "All":
            n_personas.append(len(group_of))
        else:
            n_personas.append(int((group_of[grouping].astype(str) == level_name).sum()))
    out = pd.DataFrame(
        {
            "annotator": [k[0] for k in keys],
            "reference": reference.name,
            "grouping": [k[1] for k in keys],
            "group": [k[2] for k in keys],
            "n_personas": n_personas,
            "n_items": matrix.n_items.to_numpy()[idx, idx],
            "kappa": matrix.kappa.to_numpy()[idx, idx],
            "low": intervals.low.to_numpy()[idx, idx],
            "high": intervals.high.to_numpy()[idx, idx],
            "observed": matrix.observed.to_numpy()[idx, idx],
            "reason": matrix.reason.to_numpy()[idx, idx],
        }
    )
    return out[list(GROUP_COLUMNS)]


# -- disagreements -------------------------------------------------------------------------------------------------
DISAGREEMENT_COLUMNS = (
    "persona_id",
    "prompt_id",
    "annotator",
    "choice",
    "reference",
    "reference_choice",
    "rationale",
    "reference_rationales",
    "prompt",
    "original",
    "revision",
)


def disagreements(judgments: pd.DataFrame, reference: Reference, study: pd.DataFrame) -> pd.DataFrame:
    """Every item on which a model annotator's label differs from the reference, with both justifications,
    the question and the two answers (the drill-down of the notebook)."""
    models = good_judgments(judgments, "model")
    models = models[models["annotator"] != reference.name]
    ref = reference.labels.rename(columns={"choice": "reference_choice"})
    merged = models.merge(ref, on=["persona_id", "prompt_id"], how="inner")
    merged = merged[merged["choice"] != merged["reference_choice"]]
    if reference.name == PEOPLE:
        humans = good_judgments(judgments, "human")
        why = humans.groupby(["persona_id", "prompt_id"])["rationale"].agg(
            lambda s: " | ".join(x for x in s if str(x).strip())
        )
    else:
        src = good_judgments(judgments, "model")
        src = src[src["annotator"] == reference.name]
        why = src.set_index(["persona_id", "prompt_id"])["rationale"]
    merged = merged.assign(
        reference=reference.name,
        reference_rationales=[
            why.get((p, q), "") for p, q in zip(merged["persona_id"], merged["prompt_id"], strict=True)
        ],
    )
    text = study[["persona_id", "prompt_id", "prompt", "original", "revision"]]
    merged = merged.merge(text, on=["persona_id", "prompt_id"], how="left")
    return merged[list(DISAGREEMENT_COLUMNS)].reset_index(drop=True)


# -- regression ----------------------------------------------------------------------------------------------------
REGRESSION_COLUMNS = ("term", "odds_ratio", "low", "high", "p_value")
MIN_LEVEL_ROWS = 5
"""Levels of a persona grouping with fewer judgments than this are pooled into "Other" for the regression."""


@dataclass(frozen=True)
class RegressionResult:
    """A logistic regression of agreement on persona attributes.

    Attributes:
        table: one row per coefficient (:data:`REGRESSION_COLUMNS`): odds ratios with their confidence interval
            (``exp`` of the Wald interval) and p-values; empty when the model could not be fitted.
        n: judgments in the fit.
        formula: the patsy formula fitted (levels in ``C(...)``, reference level = the most frequent).
        note: ``""`` or why the table is empty or to be read with care (no variation, perfect separation,
            no convergence, too few judgments).
    """

    table: pd.DataFrame
    n: int
    formula: str
    note: str


def agreement_regression(
    judgments: pd.DataFrame,
    reference: Reference,
    groups: pd.DataFrame,
    groupings: Sequence[str],
    *,
    level: float = 0.95,
    min_level_rows: int = MIN_LEVEL_ROWS,
) -> RegressionResult:
    """Which personas do models fail to imitate? ``agree ~ C(grouping) + ... [+ C(annotator)]``, a statsmodels
    logistic regression of "the model's label equals the reference's" on the persona's groups.

    One row per model judgment that has a reference label; the annotator is a covariate when there are several.
    Sparse levels (fewer than ``min_level_rows`` judgments) are pooled into "Other"; a grouping left with one
    level is dropped. Judgments of one persona are not independent: read the intervals as descriptive.
    """
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    empty = pd.DataFrame(columns=list(REGRESSION_COLUMNS))
    models = good_judgments(judgments, "model")
    models = models[models["annotator"] != reference.name]
    ref = reference.labels.rename(columns={"choice": "reference_choice"})
    data = models.merge(ref, on=["persona_id", "prompt_id"], how="inner")
    data = data.merge(groups, on="persona_id", how="left")
    data["agree"] = (data["choice"] == data["reference_choice"]).astype(int)
    n = len(data)
    if n == 0:
        return RegressionResult(empty, 0, "", "no model judgment has a reference label")
    if data["agree"].nunique() < 2:
        what = "agrees with" if data["agree"].iloc[0] else "disagrees with"
        return RegressionResult(empty, n, "", f"no variation: every judgment {what} the reference")
    terms: list[str] = []
    names: dict[str, str] = {}
    covariates = list(groupings) + (["annotator"] if data["annotator"].nunique() > 1 else [])
    for col in covariates:
        if col not in data.columns:
            raise PersonaLabError(f"agreement regression: no persona grouping {col!r}")
        values = data[col].fillna("missing").astype(str)
        counts = values.value_counts()
        values = values.where(values.map(counts) >= min_level_rows, "Other")
        if values.nunique() < 2:
            continue
        safe = f"g{len(terms)}"
        names[safe] = col
        data[safe] = values
        base = values.value_counts().index[0]
        terms.append(f"C({safe}, Treatment(reference={base!r}))")
    formula = "agree ~ " + (" + ".join(terms) if terms else "1")
    if n <= len(terms) * 2 + 1:
        return RegressionResult(empty, n, formula, f"too few judgments ({n}) for {len(terms)} groupings")
    note = ""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = smf.logit(formula, data=data).fit(disp=0, maxiter=200)
        kinds = {type(w.message) for w in caught}
        if PerfectSeparationWarning in kinds:
            note = "perfect separation: some group always or never agrees, its odds ratio is not estimable"
        elif ConvergenceWarning in kinds or not fit.mle_retvals.get("converged", True):
            note = "the fit did not converge; the odds ratios are not reliable"
    except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as exc:
        return RegressionResult(empty, n, formula, f"not estimable: {exc}")
    ci = np.exp(fit.conf_int(alpha=1 - level))
    table = pd.DataFrame(
        {
            "term": [_term_name(t, names) for t in fit.params.index],
            "odds_ratio": np.exp(fit.params.to_numpy()),
            "low": ci.iloc[:, 0].to_numpy(),
            "high": ci.iloc[:, 1].to_numpy(),
            "p_value": fit.pvalues.to_numpy(),
        }
    )
    return RegressionResult(table, n, formula, note)


def _term_name(term: str, names: dict[str, str]) -> str:
    """``C(g0, Treatment(reference='Female'))[T.Male]`` -> ``Sex: Male (vs Female)``."""
    if term == "Intercept":
        return "Intercept (odds of agreeing, reference groups)"
    for safe, col in names.items():
        prefix = f"C({safe}, Treatment(reference="
        if term.startswith(prefix):
            base = term[len(prefix) :].split("))", 1)[0].strip("'\"")
            level = term.split("[T.", 1)[1].rstrip("]") if "[T." in term else term
            return f"{col}: {level} (vs {base})"
    return term
