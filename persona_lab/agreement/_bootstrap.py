"""Bootstrap confidence intervals over items for Cohen's kappa, and statsmodels cross-checks.

PERSONA reports kappas without intervals. With 10 questions per persona (Sec. 4) a kappa moves by tenths when one
item changes, so every kappa here comes with a nonparametric bootstrap interval over items (Efron & Tibshirani
1993): items are resampled with replacement, all raters keep their labels on the drawn items (so a pair's shared
items are resampled together), the kappa is recomputed and the percentile interval of the replicates is reported.
Replicates in which a kappa is undefined (no shared item drawn, one class only) are left out of that pair's
interval; ``defined`` gives their share, and the interval is NaN when fewer than half the replicates are defined.

The asymptotic interval of ``statsmodels.stats.inter_rater.cohens_kappa`` (Fleiss, Cohen & Everitt 1969
standard error) is available as a cross-check (:func:`statsmodels_kappa`), as is Fleiss' multi-rater kappa for
several people who labelled the same items (:func:`fleiss_kappa`; with two raters it equals Scott's pi, not
Cohen's kappa).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from persona_lab.agreement._kappa import (
    KappaCounts,
    KappaDesign,
    KappaMatrix,
    _check_labels,
    _missing,
    kappa_details,
)
from persona_lab.errors import PersonaLabError

MAX_BOOTSTRAP_CELLS = 50_000_000
"""Replicates x rater pairs held in memory at once; larger requests are refused with advice."""
MIN_DEFINED_SHARE = 0.5
"""An interval needs at least this share of replicates in which the kappa is defined."""


@dataclass(frozen=True)
class KappaIntervals:
    """Percentile bootstrap intervals for a kappa matrix (same index and columns).

    Attributes:
        low: lower bound per pair.
        high: upper bound per pair.
        defined: share of replicates in which the pair's kappa was defined.
        n_boot: replicates drawn.
        level: coverage, e.g. 0.95.
    """

    low: pd.DataFrame
    high: pd.DataFrame
    defined: pd.DataFrame
    n_boot: int
    level: float


def bootstrap_intervals(
    design: KappaDesign,
    *,
    pool: Callable[[KappaCounts], KappaCounts] = lambda counts: counts,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> KappaIntervals:
    """Percentile bootstrap intervals over the design's items for every pair.

    Each replicate draws ``len(design.items)`` items with replacement (item weights = how often each was drawn),
    recomputes the counts, applies ``pool`` (e.g. ``KappaCounts.symmetric``) and takes the kappa matrix.

    Raises:
        PersonaLabError: ``n_boot < 1``, ``level`` outside (0, 1), or more than :data:`MAX_BOOTSTRAP_CELLS`
            values to hold.
    """
    if n_boot < 1:
        raise PersonaLabError(f"bootstrap: n_boot = {n_boot}; draw at least 1 replicate (1,000 is usual)")
    if not 0 < level < 1:
        raise PersonaLabError(f"bootstrap: level = {level}; give a coverage between 0 and 1, e.g. 0.95")
    template = pool(design.counts()).matrix().kappa
    rows, cols = template.index, template.columns
    n_items = len(design.items)
    if n_items == 0:
        nan = np.full(template.shape, np.nan)
        return _frames(nan, nan, np.zeros(template.shape), rows, cols, n_boot, level)
    if n_boot * template.size > MAX_BOOTSTRAP_CELLS:
        raise PersonaLabError(
            f"bootstrap: {n_boot:,} replicates x {template.shape[0]:,} x {template.shape[1]:,} raters exceed "
            f"{MAX_BOOTSTRAP_CELLS:,} values; bootstrap fewer raters (the pairs you report) or fewer replicates"
        )
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, *template.shape))
    for b in range(n_boot):  # a loop over replicates; each is a few matrix products over all pairs at once
        weights = np.bincount(rng.integers(0, n_items, n_items), minlength=n_items).astype(np.float64)
        draws[b] = pool(design.counts(weights)).matrix().kappa.to_numpy()
    defined = np.isfinite(draws).mean(axis=0)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pairs never defined: all-NaN slices
        low = np.nanquantile(draws, alpha, axis=0)
        high = np.nanquantile(draws, 1 - alpha, axis=0)
    enough = defined >= MIN_DEFINED_SHARE
    return _frames(
        np.where(enough, low, np.nan), np.where(enough, high, np.nan), defined, rows, cols, n_boot, level
    )


def _frames(
    low: np.ndarray,
    high: np.ndarray,
    defined: np.ndarray,
    rows: pd.Index,
    cols: pd.Index,
    n_boot: int,
    level: float,
) -> KappaIntervals:
    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=rows.copy(), columns=cols.copy())

    return KappaIntervals(frame(low), frame(high), frame(defined), n_boot, level)


def bootstrap_kappa_matrix(
    labels: pd.DataFrame,
    *,
    raters: Sequence[object] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> KappaIntervals:
    """Percentile bootstrap intervals over items for every pair of :func:`kappa_matrix` (same arguments)."""
    return bootstrap_intervals(KappaDesign(labels, raters_a=raters), n_boot=n_boot, level=level, seed=seed)


def bootstrap_kappa(
    a: Sequence[object],
    b: Sequence[object],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval over items of :func:`cohen_kappa` for two aligned label sequences.

    Returns:
        ``(low, high)``; NaN when fewer than half the replicates give a defined kappa.
    """
    kappa_details(a, b)  # validates the lengths
    labels_a = pd.DataFrame(
        [("a", i, x) for i, x in enumerate(a) if not _missing(x)], columns=["rater", "item", "choice"]
    )
    labels_b = pd.DataFrame(
        [("b", i, y) for i, y in enumerate(b) if not _missing(y)], columns=["rater", "item", "choice"]
    )
    design = KappaDesign(labels_a, labels_b, raters_a=["a"], raters_b=["b"])
    out = bootstrap_intervals(design, n_boot=n_boot, level=level, seed=seed)
    return float(out.low.iat[0, 0]), float(out.high.iat[0, 0])


def with_intervals(
    matrix: KappaMatrix, intervals: KappaIntervals, *, upper: bool = True, diagonal: bool = True
) -> pd.DataFrame:
    """The pairs of ``matrix`` (:meth:`KappaMatrix.pairs`) with their interval: columns ``low``, ``high``,
    ``defined`` added."""
    pairs = matrix.pairs(upper=upper, diagonal=diagonal)
    rows = matrix.kappa.index.get_indexer(pairs["rater_a"])
    cols = matrix.kappa.columns.get_indexer(pairs["rater_b"])
    pairs["low"] = intervals.low.to_numpy()[rows, cols]
    pairs["high"] = intervals.high.to_numpy()[rows, cols]
    pairs["defined"] = intervals.defined.to_numpy()[rows, cols]
    return pairs


@dataclass(frozen=True)
class StatsmodelsKappa:
    """``statsmodels.stats.inter_rater.cohens_kappa`` on the pair's contingency table.

    Attributes:
        kappa: statsmodels' kappa (NaN where it divides 0 by 0).
        low: lower bound of its asymptotic interval.
        high: upper bound.
        std: its asymptotic standard error.
    """

    kappa: float
    low: float
    high: float
    std: float


def statsmodels_kappa(a: Sequence[object], b: Sequence[object]) -> StatsmodelsKappa:
    """Cross-check :func:`cohen_kappa` with statsmodels (same shared-items convention; 95 % interval, the only
    level statsmodels offers).

    statsmodels builds no table itself from missing labels, so the pair's shared items are tabulated here (rows:
    rater A's label, columns: rater B's, over the union of the labels either used).
    """
    import warnings

    from statsmodels.stats.inter_rater import cohens_kappa

    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not _missing(x) and not _missing(y)]
    if not pairs:
        nan = float("nan")
        return StatsmodelsKappa(nan, nan, nan, nan)
    cats = list(pd.unique(pd.Series([p[0] for p in pairs] + [p[1] for p in pairs], dtype=object)))
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)))
    for x, y in pairs:
        table[index[x], index[y]] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = cohens_kappa(table)
    return StatsmodelsKappa(
        float(res.kappa), float(res.kappa_low), float(res.kappa_upp), float(res.std_kappa)
    )


def fleiss_kappa(labels: pd.DataFrame) -> tuple[float, int]:
    """Fleiss' kappa (statsmodels) of several raters over the items every one of them labelled.

    Args:
        labels: rows ``rater, item, choice`` (e.g. the four people who role-played one persona).

    Returns:
        ``(kappa, n_items)``: NaN when fewer than two raters or no item labelled by all of them. Items some rater
        skipped are left out, because Fleiss' kappa assumes every item has the same number of ratings.
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    df = _check_labels(labels, "fleiss_kappa")
    n_raters = df["rater"].nunique()
    if n_raters < 2:
        return float("nan"), 0
    counts = pd.crosstab(df["item"], df["choice"])
    full = counts[counts.sum(axis=1) == n_raters]
    if full.empty:
        return float("nan"), 0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sm_fleiss(full.to_numpy())), len(full)
