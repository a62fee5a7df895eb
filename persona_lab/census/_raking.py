"""Raking to national margins: iterative proportional fitting of record weights, each item over its universe.

Raking (Deming & Stephan 1940, "On a least squares adjustment of a sampled frequency table when the expected
marginal totals are known", Ann. Math. Stat. 11) cycles through the margins; for item ``j`` it multiplies the
weight of every record in the item's universe by ``t_c * W_U / W_c``, where ``t_c`` is the published share of
the record's category, ``W_c`` the current weight of the category and ``W_U`` of the universe, so after the step
the item matches exactly and its universe keeps its total. Records outside the universe are untouched. The
fixed point is the weighting closest to the starting weights in Kullback-Leibler divergence among all that
match every margin (Ireland & Kullback 1968, "Contingency tables with given marginals", Biometrika 55): the
weights change as little as the margins require, and every final weight is the base weight times one factor
per item category, so the associations within a category of every item are kept.

Two uses (:func:`rake_frame`): PUMS person weights (PWGTP, or uniform records) and the embedded census model,
whose joint is reweighted through a fixed reference sample of its draws (:class:`RakedModel`). A margin
category that no record of the universe holds cannot be reached: raking refuses it with an error naming the
item, the category and its table ID, instead of converging to a silent approximation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_lab.census._margins import (
    NOT_RAKED_ITEMS,
    RAKED_ITEMS,
    NationalMargins,
    RakedItem,
    load_national_margins,
    raked_attributes,
)
from persona_lab.census._schema import CENSUS_ATTRIBUTES, META_COLUMNS, OPTIONAL_ATTRIBUTES
from persona_lab.census._stats import effective_sample_size
from persona_lab.errors import PersonaLabError

TOLERANCE = 1e-6
"""Raking stops when no item's share differs from its margin by more than this."""

MAX_ITERATIONS = 200
"""Full sweeps over the items before raking gives up (and reports the gap it reached)."""

REFERENCE_DRAWS = 200_000
"""Draws of the embedded model whose weights are raked to find the model's raking factors."""

REFERENCE_SEED = 2018
"""Seed of those reference draws, so the factors of a model are the same in every run."""


@dataclass(frozen=True)
class ItemFit:
    """One raked item before and after raking.

    Attributes:
        item: Margin item name.
        title: Panel title.
        universe: Who the item covers, in the persona frame's terms.
        records: Records in the universe.
        categories: Margin categories, in the published order.
        tables: Their table IDs.
        target: Published shares.
        before: Shares under the starting weights.
        after: Shares under the raked weights.
    """

    item: str
    title: str
    universe: str
    records: int
    categories: tuple[str, ...]
    tables: tuple[str, ...]
    target: tuple[float, ...]
    before: tuple[float, ...]
    after: tuple[float, ...]

    @property
    def tvd_before(self) -> float:
        return 0.5 * float(np.abs(np.subtract(self.before, self.target)).sum())

    @property
    def tvd_after(self) -> float:
        return 0.5 * float(np.abs(np.subtract(self.after, self.target)).sum())


@dataclass(frozen=True)
class AssociationShift:
    """Cramér's V of one attribute pair under the starting and the raked weights."""

    a: str
    b: str
    before: float
    after: float


@dataclass(frozen=True)
class RakingReport:
    """What raking did: convergence, effective sample size, fit per item, association shifts.

    Attributes:
        source: What was raked (``"ACS 2018 PUMS records"``, ``"200,000 draws of the embedded census model"``).
        margins: Where the margins come from (survey, year, tables).
        base: The starting weights (``"pwgtp"``, ``"none"`` (uniform records) or ``"model draws"``).
        records: Records raked.
        iterations: Full sweeps over the items.
        converged: Whether the largest gap fell below ``tolerance``.
        max_gap: The largest remaining ``|share - margin|`` over every item and category.
        max_gap_cell: ``"item: category"`` of that gap.
        tolerance: The convergence threshold.
        ess_before: Kish effective sample size of the starting weights.
        ess_after: Of the raked weights.
        weight_ratio: Smallest and largest raked / starting weight over the records.
        items: Fit per raked item.
        not_raked: Attribute or margin item -> why it is not raked (place of birth, Hispanic origin, ...).
        associations: The strongest attribute pairs (Cramér's V under the starting weights) and their V
            after raking.
        seconds: Time raking took (reference draws included for the model).
    """

    source: str
    margins: str
    base: str
    records: int
    iterations: int
    converged: bool
    max_gap: float
    max_gap_cell: str
    tolerance: float
    ess_before: float
    ess_after: float
    weight_ratio: tuple[float, float]
    items: tuple[ItemFit, ...]
    not_raked: dict[str, str]
    associations: tuple[AssociationShift, ...] = ()
    seconds: float = 0.0

    @property
    def max_association_shift(self) -> float:
        """The largest ``|V after - V before|`` over :attr:`associations` (0 without any)."""
        return max((abs(s.after - s.before) for s in self.associations), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for ``summary.json``)."""
        return {
            "source": self.source,
            "margins": self.margins,
            "base_weights": self.base,
            "records": self.records,
            "iterations": self.iterations,
            "converged": self.converged,
            "max_gap": self.max_gap,
            "max_gap_cell": self.max_gap_cell,
            "effective_sample_size": {"before": round(self.ess_before, 1), "after": round(self.ess_after, 1)},
            "weight_ratio": {"min": self.weight_ratio[0], "max": self.weight_ratio[1]},
            "tvd": {
                it.item: {"before": round(it.tvd_before, 4), "after": round(it.tvd_after, 6)}
                for it in self.items
            },
            "not_raked": dict(self.not_raked),
            "cramers_v": [
                {"pair": [s.a, s.b], "before": round(s.before, 4), "after": round(s.after, 4)}
                for s in self.associations
            ],
            "max_cramers_v_shift": round(self.max_association_shift, 4),
            "seconds": round(self.seconds, 2),
        }

    def summary(self) -> str:
        """A few human-readable lines."""
        state = "converged" if self.converged else "did NOT converge"
        lines = [
            f"raked {self.records:,} {self.source} to {self.margins}: {state} in {self.iterations} iterations "
            f"(largest remaining gap {self.max_gap:.1e} at {self.max_gap_cell}); effective sample size "
            f"{self.ess_before:,.0f} -> {self.ess_after:,.0f}; weights x{self.weight_ratio[0]:.2f} to "
            f"x{self.weight_ratio[1]:.2f}; {self.seconds:.1f} s",
        ]
        for it in self.items:
            lines.append(f"  {it.title}: TVD {it.tvd_before:.3f} -> {it.tvd_after:.4f}")
        lines.append(f"  largest Cramer's V shift of the strongest pairs: {self.max_association_shift:.3f}")
        lines.append("  not raked: " + "; ".join(f"{k} ({v})" for k, v in self.not_raked.items()))
        return "\n".join(lines)


@dataclass(frozen=True)
class RakingFit:
    """Raked weights and the factors they are made of: ``weight = base * prod_j factors[j][category_j]``."""

    weights: np.ndarray
    factors: dict[str, pd.Series]
    report: RakingReport
    margins: NationalMargins


def _encode(
    frame: pd.DataFrame, margins: NationalMargins, items: Sequence[RakedItem]
) -> list[tuple[RakedItem, np.ndarray, np.ndarray]]:
    """Per item: category index per row (-1 outside the universe) and the published shares."""
    out = []
    for it in items:
        margin = margins[it.item]
        cats = it.categories(frame)
        codes = pd.Index(list(margin.categories)).get_indexer(cats).astype(np.int64)
        unknown = (codes < 0) & pd.notna(cats)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise PersonaLabError(
                f"persona frame row {row}: category {cats[row]!r} of item {it.item!r} is not a category of the "
                f"national margin ({', '.join(margin.categories)})"
            )
        out.append((it, codes, margin.shares.to_numpy()))
    return out


def _shares(codes: np.ndarray, w: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    inside = codes >= 0
    sums = np.bincount(codes[inside], weights=w[inside], minlength=k)
    return sums, float(sums.sum())


def rake_weights(
    frame: pd.DataFrame,
    base: np.ndarray,
    *,
    margins: NationalMargins | None = None,
    items: Sequence[RakedItem] = RAKED_ITEMS,
    source: str = "records",
    base_name: str = "pwgtp",
    tolerance: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
) -> RakingFit:
    """Rake ``base`` weights of the persona frame's records to the national margins, item by item.

    Args:
        frame: A persona frame (:func:`~persona_lab.census.load_persona_frame` or model draws).
        base: Starting weight per record (PWGTP, or ones).
        margins: The published margins (default: ACS 2018, shipped).
        items: The items to match (default :data:`~persona_lab.census._margins.RAKED_ITEMS`).
        source: What the records are, for the report.
        base_name: What the starting weights are, for the report.
        tolerance: Stop when every share is within this of its margin.
        max_iterations: Full sweeps at most.

    Raises:
        PersonaLabError: a margin category that no record of its universe holds (the message names the item,
            the category and its table ID), an item with no record in its universe, or bad weights.
    """
    start = time.perf_counter()
    margins = margins or load_national_margins()
    w0 = np.asarray(base, dtype=float)
    if len(w0) != len(frame) or not np.isfinite(w0).all() or (w0 < 0).any() or w0.sum() <= 0:
        raise PersonaLabError(
            "raking needs one finite, non-negative starting weight per record with a positive sum"
        )
    encoded = _encode(frame, margins, items)
    for it, codes, target in encoded:
        margin = margins[it.item]
        sums, total = _shares(codes, w0, len(target))
        if total <= 0:
            raise PersonaLabError(
                f"national margin {it.item!r}: none of the {source} is in its universe ({it.universe}); it "
                f"cannot be raked"
            )
        for c in np.flatnonzero((sums <= 0) & (target > 0)):
            raise PersonaLabError(
                f"national margin {it.item!r}, category {margin.categories[c]!r} ({margin.tables[c]}, "
                f"{target[c]:.2%} of the {margin.universe}): none of the {source} in the item's universe "
                f"({it.universe}) holds it, so raking cannot reach this margin; use a source that has such "
                f"records (more states), or the population of the source's states (--population states, "
                f"census.population = 'states')"
            )
    before = [_shares(codes, w0, len(t)) for _, codes, t in encoded]
    factors = [np.ones(len(t)) for _, _, t in encoded]
    w = w0.copy()
    gap, cell, iterations = math.inf, "", 0
    while iterations < max_iterations:
        iterations += 1
        for j, (_, codes, target) in enumerate(encoded):
            sums, total = _shares(codes, w, len(target))
            ratio = np.divide(target * total, sums, out=np.zeros_like(sums), where=sums > 0)
            factors[j] *= ratio
            inside = codes >= 0
            w[inside] *= ratio[codes[inside]]
        gap, cell = _largest_gap(encoded, w, margins)
        if gap <= tolerance:
            break
    fits = []
    for (it, codes, target), (b_sums, b_total) in zip(encoded, before, strict=True):
        a_sums, a_total = _shares(codes, w, len(target))
        margin = margins[it.item]
        fits.append(
            ItemFit(
                item=it.item,
                title=it.title,
                universe=it.universe,
                records=int((codes >= 0).sum()),
                categories=margin.categories,
                tables=margin.tables,
                target=tuple(float(t) for t in target),
                before=tuple(float(v) for v in b_sums / b_total),
                after=tuple(float(v) for v in a_sums / a_total),
            )
        )
    positive = w0 > 0
    ratio = w[positive] / w0[positive]
    report = RakingReport(
        source=source,
        margins=margins.source,
        base=base_name,
        records=len(frame),
        iterations=iterations,
        converged=gap <= tolerance,
        max_gap=float(gap),
        max_gap_cell=cell,
        tolerance=tolerance,
        ess_before=effective_sample_size(w0),
        ess_after=effective_sample_size(w),
        weight_ratio=(float(ratio.min()), float(ratio.max())),
        items=tuple(fits),
        not_raked=not_raked(),
        associations=association_shifts(frame, w0, w),
        seconds=time.perf_counter() - start,
    )
    named = {
        it.item: pd.Series(f, index=list(margins[it.item].categories))
        for (it, _, _), f in zip(encoded, factors, strict=True)
    }
    return RakingFit(weights=w, factors=named, report=report, margins=margins)


def _largest_gap(
    encoded: list[tuple[RakedItem, np.ndarray, np.ndarray]], w: np.ndarray, margins: NationalMargins
) -> tuple[float, str]:
    gap, cell = 0.0, ""
    for it, codes, target in encoded:
        sums, total = _shares(codes, w, len(target))
        diff = np.abs(sums / total - target)
        c = int(np.argmax(diff))
        if diff[c] > gap or not cell:
            gap, cell = float(diff[c]), f"{it.item}: {margins[it.item].categories[c]}"
    return gap, cell


def not_raked() -> dict[str, str]:
    """Persona attributes no raked item constrains, and published margins not raked, with the reason."""
    raked = set(raked_attributes())
    out = {
        a: "no national margin among the published items"
        for a in (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES)
        if a not in raked
    }
    out.update({f"margin {k}": v for k, v in NOT_RAKED_ITEMS.items()})
    return out


# --------------------------------------------------------------------------------------------------------
# Associations: Cramér's V of the strongest attribute pairs before and after raking
# --------------------------------------------------------------------------------------------------------


def _association_codes(frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, int]]:
    """Integer codes of every persona attribute the frame has (age and income in bands), once per column."""
    from persona_lab.census._margins import AGE_GROUPS, INCOME_GROUPS

    out: dict[str, tuple[np.ndarray, int]] = {}
    for col in (c for c in (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES) if c in frame.columns):
        if col == "age":
            starts = np.asarray([a for a, _ in AGE_GROUPS])
            codes = np.searchsorted(starts, pd.to_numeric(frame[col]).to_numpy(float), "right") - 1
        elif col == "income":
            v = np.nan_to_num(pd.to_numeric(frame[col], errors="coerce").to_numpy(float), nan=0.0)
            codes = np.searchsorted(np.asarray([0.0, *(u for u, _ in INCOME_GROUPS)]), v, "right")
        else:
            codes = pd.factorize(frame[col].astype(object).where(frame[col].notna(), "<absent>"))[0]
        codes = np.asarray(codes, dtype=np.int64)
        out[col] = (codes, int(codes.max()) + 1 if len(codes) else 0)
    return out


def _cramers_v(x: np.ndarray, kx: int, y: np.ndarray, ky: int, w: np.ndarray) -> float:
    p = np.bincount(x * ky + y, weights=w, minlength=kx * ky).reshape(kx, ky)
    p = p / p.sum()
    e = p.sum(axis=1, keepdims=True) @ p.sum(axis=0, keepdims=True)
    m = min(kx, ky)
    if m < 2:
        return float("nan")
    phi2 = float(((p - e) ** 2 / np.where(e > 0, e, 1.0)).sum())
    return math.sqrt(phi2 / (m - 1))


def association_shifts(
    frame: pd.DataFrame, before: np.ndarray, after: np.ndarray, top: int = 12
) -> tuple[AssociationShift, ...]:
    """Cramér's V (:func:`~persona_lab.census._stats.cramers_v`, with the categories of the whole frame) of the
    ``top`` most associated attribute pairs under ``before``, and the same pairs under ``after``."""
    codes = _association_codes(frame)
    cols = [c for c in codes if codes[c][1] >= 2]
    v = {(a, b): _cramers_v(*codes[a], *codes[b], before) for i, a in enumerate(cols) for b in cols[i + 1 :]}
    strongest = sorted(v, key=lambda k: -v[k])[:top]
    return tuple(
        AssociationShift(a, b, v[(a, b)], _cramers_v(*codes[a], *codes[b], after)) for a, b in strongest
    )


# --------------------------------------------------------------------------------------------------------
# The embedded model raked: its joint times the raking factors, sampled by rejection
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RakedModel:
    """The embedded census model reweighted to the national margins (a :class:`~persona_lab.census.CensusSource`).

    The raked joint is ``P*(x) = P(x) prod_j f_j(c_j(x)) / Z``: the model's joint times one raking factor per
    item category, the factors found by raking :data:`REFERENCE_DRAWS` draws of the model (seed
    :data:`REFERENCE_SEED`). :meth:`sample` draws from ``P*`` exactly by rejection: a model draw is kept with
    probability ``w(x) / w_max`` (``w_max``: the largest weight among the reference draws; a rarer, heavier
    combination is kept with probability 1, measured at under 1 in 10,000 draws). Each persona is a fresh
    draw of the model, not a copy of a reference draw.

    Attributes:
        model: The embedded census model.
        reference: The reference draws (a persona frame).
        fit: The raking of the reference draws (their weights, the factors and the report).
        w_max: The acceptance bound.
        acceptance: The expected share of model draws kept (mean reference weight / ``w_max``).
    """

    model: Any
    reference: pd.DataFrame = field(repr=False)
    fit: RakingFit = field(repr=False)
    w_max: float = 1.0
    acceptance: float = 1.0

    @classmethod
    def build(cls, model: Any, margins: NationalMargins | None = None) -> RakedModel:
        """Rake ``model``'s reference draws to ``margins`` (default ACS 2018)."""
        start = time.perf_counter()
        draws = model.sample(REFERENCE_DRAWS, np.random.default_rng(REFERENCE_SEED))
        fit = rake_weights(
            draws,
            np.ones(len(draws)),
            margins=margins,
            source=f"draws of the embedded census model (seed {REFERENCE_SEED})",
            base_name="model draws (equal weights)",
        )
        fit = replace(fit, report=replace(fit.report, seconds=time.perf_counter() - start))
        w_max = float(fit.weights.max())
        return cls(model, draws, fit, w_max=w_max, acceptance=float(fit.weights.mean() / w_max))

    @property
    def report(self) -> RakingReport:
        return self.fit.report

    def weights(self, frame: pd.DataFrame) -> np.ndarray:
        """The raking weight ``prod_j f_j(c_j(x))`` of each row of a persona frame."""
        w = np.ones(len(frame))
        for it, codes, _ in _encode(
            frame, self.fit.margins, [i for i in RAKED_ITEMS if i.item in self.fit.factors]
        ):
            inside = codes >= 0
            w[inside] *= self.fit.factors[it.item].to_numpy()[codes[inside]]
        return w

    def sample(
        self, n: int, rng: np.random.Generator, method: Literal["systematic", "iid"] = "systematic"
    ) -> pd.DataFrame:
        """Draw ``n`` personas from the raked joint (``weight`` 1.0, ``serialno`` ``model-000001``...)."""
        if n < 0:
            raise PersonaLabError(f"cannot sample {n} personas: expected n >= 0")
        kept: list[pd.DataFrame] = []
        have = 0
        while have < n:
            m = max(1024, math.ceil((n - have) / self.acceptance * 1.1))
            draws = self.model.sample(m, rng, method)
            accept = rng.random(m) * self.w_max < self.weights(draws)
            kept.append(draws[accept])
            have += int(accept.sum())
        out = (
            pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)
            if kept
            else self.model.sample(0, rng)
        )
        width = max(6, len(str(n)))
        out["serialno"] = pd.Series([f"model-{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
        return out[[*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, *META_COLUMNS]]


def rake_frame(
    frame: pd.DataFrame, weighting: str, *, year: int, margins: NationalMargins | None = None
) -> RakingFit:
    """Rake a PUMS persona frame: from PWGTP (``weighting="pwgtp"``) or from equal record weights (``"none"``)."""
    base = frame["weight"].to_numpy(float) if weighting == "pwgtp" else np.ones(len(frame))
    return rake_weights(
        frame,
        base,
        margins=margins,
        source=f"ACS {year} PUMS person records",
        base_name="PWGTP" if weighting == "pwgtp" else "equal record weights",
    )
