"""The embedded census model: a Bayesian network of the persona-relevant PUMS variables.

The main job must draw personas offline, without a PUMS file. This module fits a compact statistical
model of the persona frame (see :mod:`persona_lab.census._schema`) from real PUMS microdata, stores only
its parameters (weighted conditional probability tables with small-cell suppression, never a record) in
``data/census_model.json``, and samples persona frames from it.

Structure (a tree-augmented network, TAN; Friedman, Geiger & Goldszmidt 1997, "Bayesian Network
Classifiers", Machine Learning 29):

* the **root** ``U`` is the joint of age band and sex. Every other variable has ``U`` as a parent, so the
  census universes that depend on age and sex (marital status and income from age 15, employment from 16,
  veteran status from 17, fertility for women 15-50, ...) are respected by construction: the age bands
  split exactly at those thresholds;
* the remaining variables form a **Chow-Liu tree** (Chow & Liu 1968, "Approximating discrete probability
  distributions with dependence trees", IEEE Trans. Inf. Theory 14): the maximum spanning tree of the
  weighted conditional mutual information ``I(X; Y | U)``, estimated with the Miller-Madow bias
  correction (Miller 1955; Paninski 2003, Neural Computation 15) so that variables with many categories do
  not win edges through estimation bias alone. Each variable ``X`` with tree parent ``Y`` has the
  conditional probability table ``P(X | U, Y)``;
* a few variables get a **second parent** ``Z`` (a variable earlier in ancestral order), making the
  network 2-dependent where the data support it (Sahami 1996, "Learning limited dependence Bayesian
  classifiers", KDD): the candidate with the largest *held-out* gain in log-likelihood of ``X`` (two-fold
  cross-validation with the suppression rules below) is kept when the gain is at least 0.005 nats per
  person. On the 2018 data: household language and ability to speak English get citizenship, which
  restores the citizenship x English-ability association a tree cannot carry (Cramér's V 0.33 in the
  data; 0.10 with the tree alone). Their tables are ``P(X | U, Y, Z)``; a suppressed row falls back to
  ``P(X | y, z)`` restricted to the support of the two-parent distribution ``P(X | u, y)`` (rules below),
  else to that distribution.

Probabilities are weighted by the person weight (PWGTP), so the model describes the population, not the
sample. Small-cell suppression, with ``k`` unweighted records (default 10):

1. categories held by fewer than ``k`` records are not published at all (no label, no probability;
   on the 2018 data: 22 detailed races, one employment status and one birthplace, 0.06 % of the
   population together), so the model never draws a category whose relations it cannot estimate;
   as parents, their records (and parent categories with fewer than ``k`` records in a fold) are pooled
   into one "other" parent category for the children's tables;
2. a table row ``P(X | u, y)`` is published only when at least ``k`` records have ``(U, Y) = (u, y)``;
   the coarser rows ``P(X | u)`` and ``P(X | y)`` likewise need ``k`` records;
3. a suppressed row is pooled at sampling time: ``P(X | y)`` restricted to the categories that
   ``P(X | u)`` allows (so the age/sex structural zeros hold), renormalized; if ``P(X | y)`` is
   suppressed or the restriction leaves nothing, ``P(X | u)`` (else the weighted marginal ``P(X)``);
4. root cells (age band x sex) with fewer than ``k`` records are dropped and the root renormalized
   (none are, on the 2018 data).

Without suppression a tree-augmented network reproduces every single-variable marginal of the data
exactly (each ``P(Y | u)`` is exact by induction down the tree); the pooling above (and, for the few
two-parent variables, the model's joint of their parents) is the only source of bias, measured at
TVD <= 0.004 per variable on the 12 states of 2018.

Numeric variables: ``age`` enters the network as age bands; a single year is drawn within the band
from the weighted single-year distribution of the band and the persona's education (when that pair
holds ``k`` records; else of the band), so grade levels and degrees agree with single years. ``income`` (PINCP) enters as bands: absent
(NaN; the PUMS loader already writes 0 for persons under 15), negative, exactly 0, and ten bands of
positive income cut at its weighted deciles; a dollar value is drawn within the band by linear
interpolation of the band's stored weighted quantiles (21 levels, fewer for small bands; the outermost
stored values are the ``k``-th smallest and largest record, so no single record's value is published).
Optional attributes that do not apply (``None``) are the category ``"<absent>"``
inside the network and ``None`` again on output.

Sampling is ancestral. By default each table is sampled *systematically* (a low-variance, unbiased
allocation: within every group of draws that share the same parent values, the counts of each category
are within one of their expectation, and the assignment to draws is a random permutation), which removes
most of the multinomial noise of i.i.d. draws; ``method="iid"`` draws independently instead. Draws come
from a ``numpy.random.Generator`` only, so a seed reproduces a frame exactly on any machine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_lab.census._sample import total_variation
from persona_lab.census._schema import CENSUS_ATTRIBUTES, META_COLUMNS, OPTIONAL_ATTRIBUTES
from persona_lab.errors import PersonaLabError
from persona_lab.io import write_text
from persona_lab.paths import DATA_DIR

__all__ = [
    "ABSENT",
    "AGE_BAND_STARTS",
    "CensusModel",
    "TreeNetwork",
    "NodeTable",
    "chow_liu_tree",
    "conditional_mutual_information",
    "cramers_v",
    "fit_census_model",
    "fit_tree_network",
    "load_embedded_model",
    "mutual_information",
    "systematic_counts",
    "total_variation_distance",
    "weighted_quantiles",
]

ABSENT = "<absent>"
"""Network category for an optional attribute that does not apply (``None`` in the persona frame)."""

EMBEDDED_MODEL_PATH = DATA_DIR / "census_model.json"
REFIT_COMMAND = "python -m persona_lab.census.fit_model"
MODEL_FORMAT = "persona_lab.census_model"
MODEL_FORMAT_VERSION = 1

AGE_BAND_STARTS: tuple[int, ...] = (
    0, 3, 5, 10, 15, 16, 17, 18, 20, 25, 30, 35, 40, 45, 51, 55, 60, 65, 70, 75, 80, 85,
)  # fmt: skip
"""First age of each age band. Besides five-year steps the bands split at every ACS universe threshold in
the PUMS data dictionary: 3 (SCHL), 5 (ENG, DREM), 15 (MAR, PINCP, FER), 16 (ESR, COW), 17 (MIL),
18 (adult), 51 (FER applies to women 15-50). The last band is 85-99 (AGEP is top-coded below 100)."""

INCOME_POSITIVE_BANDS = 10
"""Positive incomes are cut into this many bands at their weighted quantiles (deciles)."""

POOLED = -2
"""Table index of the pooled "other" parent category (parent categories with fewer than ``k`` records)."""

_UNPUBLISHED = (1 << 20) - 2
"""Parent code of an unpublished category (under ``k`` records) when scoring held-out records."""

AGE_DETAIL = "education"
"""The attribute that single years of age are drawn conditionally on, within their band."""

ROOT = "age band x sex"
"""Name of the root node of the network (the joint of age band and sex)."""

_ROUND = 7
"""Decimal places kept for stored probabilities (renormalized on load)."""


# --------------------------------------------------------------------------------------------------------
# Statistics over weighted categorical data
# --------------------------------------------------------------------------------------------------------


def _joint(x: np.ndarray, y: np.ndarray, w: np.ndarray, kx: int, ky: int) -> np.ndarray:
    return np.bincount(x * ky + y, weights=w, minlength=kx * ky).reshape(kx, ky)


def mutual_information(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, *, miller_madow: bool = False
) -> float:
    """Weighted mutual information ``I(X; Y)`` in nats between two integer-coded variables.

    The plug-in estimate over weighted proportions: ``sum p(x,y) log(p(x,y) / (p(x) p(y)))``; with unit
    weights it equals :func:`sklearn.metrics.mutual_info_score`. ``miller_madow=True`` subtracts the
    first-order bias ``(B_xy - B_x - B_y + 1) / (2 n_eff)`` (B = occupied cells; Miller 1955), with the
    Kish effective sample size ``n_eff = (sum w)^2 / sum w^2``.
    """
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    if len(x) == 0 or w.sum() <= 0:
        return float("nan")
    kx, ky = int(x.max()) + 1, int(y.max()) + 1
    joint = _joint(x, y, w, kx, ky)
    return _mi_from_joint(joint, _n_eff(w) if miller_madow else None)


def _n_eff(w: np.ndarray) -> float:
    return float(w.sum() ** 2 / (w**2).sum())


def _mi_from_joint(joint: np.ndarray, n_eff: float | None) -> float:
    total = joint.sum()
    if total <= 0:
        return 0.0
    p = joint / total
    px = p.sum(axis=1, keepdims=True)
    py = p.sum(axis=0, keepdims=True)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())
    if n_eff is not None:
        b_xy = int(nz.sum())
        b_x = int((px > 0).sum())
        b_y = int((py > 0).sum())
        mi -= (b_xy - b_x - b_y + 1) / (2.0 * n_eff)
    return mi


def conditional_mutual_information(
    x: np.ndarray,
    y: np.ndarray,
    c: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    miller_madow: bool = False,
) -> float:
    """Weighted conditional mutual information ``I(X; Y | C) = sum_c p(c) I(X; Y | C = c)`` in nats.

    Each stratum's term is :func:`mutual_information` over the records with ``C = c`` (optionally
    Miller-Madow corrected within the stratum), weighted by the stratum's weight share.
    """
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    if len(x) == 0 or w.sum() <= 0:
        return float("nan")
    kx, ky, kc = int(x.max()) + 1, int(y.max()) + 1, int(c.max()) + 1
    cube = np.bincount((c * kx + x) * ky + y, weights=w, minlength=kc * kx * ky).reshape(kc, kx, ky)
    total = w.sum()
    p = cube / total
    pc = p.sum(axis=(1, 2))
    px = p.sum(axis=2)  # p(c, x)
    py = p.sum(axis=1)  # p(c, y)
    nz = p > 0
    ratio = np.where(nz, p * pc[:, None, None], 1.0) / np.where(nz, px[:, :, None] * py[:, None, :], 1.0)
    out = float((p[nz] * np.log(ratio[nz])).sum())
    if miller_madow:
        w2 = np.bincount(c, weights=w**2, minlength=kc)
        ws = cube.sum(axis=(1, 2))
        live = ws > 0
        cells = nz.sum(axis=(1, 2)) - (px > 0).sum(axis=1) - (py > 0).sum(axis=1) + 1
        n_eff = np.where(live, ws**2 / np.where(w2 > 0, w2, 1.0), 1.0)
        out -= float((ws[live] / total * cells[live] / (2.0 * n_eff[live])).sum())
    return out


def chow_liu_tree(scores: np.ndarray, root: int = 0) -> list[int]:
    """Maximum spanning tree of a symmetric score matrix (Prim's algorithm), directed away from ``root``.

    Returns ``parent`` with ``parent[root] == -1``. Ties are broken by the lower index, so the tree is
    deterministic. With mutual information as the score this is the Chow-Liu tree (Chow & Liu 1968).
    """
    s = np.asarray(scores, dtype=float)
    n = s.shape[0]
    if s.shape != (n, n):
        raise ValueError("scores must be a square matrix")
    parent = [-1] * n
    in_tree = np.zeros(n, dtype=bool)
    in_tree[root] = True
    best = s[root].copy()
    best_from = np.full(n, root)
    for _ in range(n - 1):
        cand = np.where(in_tree, -np.inf, best)
        j = int(np.argmax(cand))
        parent[j] = int(best_from[j])
        in_tree[j] = True
        better = (~in_tree) & (s[j] > best)
        best[better] = s[j][better]
        best_from[better] = j
    return parent


def total_variation_distance(p: Mapping[Any, float] | pd.Series, q: Mapping[Any, float] | pd.Series) -> float:
    """TVD between two unnormalized distributions (e.g. weighted counts): each is normalized first."""
    ps, qs = pd.Series(dict(p), dtype=float), pd.Series(dict(q), dtype=float)
    return total_variation(ps / ps.sum(), qs / qs.sum())


def cramers_v(
    x: Sequence[Any] | pd.Series,
    y: Sequence[Any] | pd.Series,
    weights: Any = None,
    *,
    categories: tuple[int, int] | None = None,
) -> float:
    """Weighted Cramér's V of two categorical variables: ``sqrt(phi^2 / (min(r, c) - 1))``.

    ``phi^2 = sum (p_xy - p_x p_y)^2 / (p_x p_y)`` over weighted proportions (chi-square divided by the
    total), without small-sample bias correction; with unit weights it equals
    ``scipy.stats.contingency.association(table, method="cramer")``. ``r`` and ``c`` are the numbers of
    observed categories unless ``categories`` gives them: pass the population's counts when comparing a
    sample with it, or a rare category missing from the sample changes the normalization (7 employment
    statuses vs 6 moves V by 0.05 at V = 0.55).
    """
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    xi, _ = pd.factorize(np.asarray(x), use_na_sentinel=False)
    yi, _ = pd.factorize(np.asarray(y), use_na_sentinel=False)
    kx, ky = int(xi.max()) + 1, int(yi.max()) + 1
    p = _joint(xi, yi, w, kx, ky)
    p = p / p.sum()
    e = p.sum(axis=1, keepdims=True) @ p.sum(axis=0, keepdims=True)
    m = min(kx, ky) if categories is None else min(categories)
    if m < 2:
        return float("nan")
    phi2 = float(((p - e) ** 2 / np.where(e > 0, e, 1.0)).sum())
    return math.sqrt(phi2 / (m - 1))


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Weighted quantiles by the midpoint rule.

    Sorted values sit at cumulative-weight positions ``(W_i - w_i / 2) / W``; a level is linearly
    interpolated between them (clamped to the smallest/largest value). With equal weights this is
    ``numpy.quantile(..., method="hazen")``.
    """
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    w = np.asarray(weights, dtype=float)[order]
    pos = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(levels, pos, v)


def systematic_counts(p: np.ndarray, n: int, u: float) -> np.ndarray:
    """Systematic sampling of ``n`` draws from probabilities ``p`` with offset ``u`` in [0, 1).

    Draw ``j`` falls in the category whose cumulative interval ``[n P_{k-1}, n P_k)`` holds ``u + j``,
    so each count is ``floor`` or ``ceil`` of ``n p_k`` and its expectation over ``u`` is exactly
    ``n p_k`` (Madow 1949).
    """
    cdf = np.cumsum(np.asarray(p, dtype=float))
    cdf = cdf / cdf[-1]
    k = np.searchsorted(cdf * n, u + np.arange(n), side="right")
    return np.bincount(np.minimum(k, len(p) - 1), minlength=len(p))


# --------------------------------------------------------------------------------------------------------
# The generic network: root + Chow-Liu tree of categorical variables, each conditioned on (root, parent)
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeTable:
    """The conditional probability tables of one non-root variable ``X`` with tree parent ``Y``.

    Attributes:
        name: Variable name.
        categories: Category labels; probability vectors are indexed by them.
        parent: Tree parent ``Y`` (``None`` for the tree's first node, which depends on the root only).
        rows: Published rows ``P(X | u, y)`` keyed by ``(u, y)`` category indices (``y = -1`` without
            parent; pooled parent categories use the key ``y = -2``).
        by_root: ``P(X | u)`` per root category index (absent: suppressed, use ``marginal``).
        by_parent: ``P(X | y)`` per parent category index (``-2``: the pooled parent categories; absent:
            suppressed, use ``P(X | u)``).
        marginal: Weighted ``P(X)``.
        pooled_parents: Parent category indices with fewer than ``k`` records, pooled into one "other"
            parent category (index ``-2``) for this table.
        parent2: Second parent ``Z`` (``None``: the variable depends on the root and its tree parent only).
        pooled_parents2: Second-parent category indices pooled into ``-2``, as for ``pooled_parents``.
        rows2: Published rows ``P(X | u, y, z)`` keyed by ``(u, y, z)``.
        by_pair: Published rows ``P(X | y, z)`` keyed by ``(y, z)``.
    """

    name: str
    categories: tuple[str, ...]
    parent: str | None
    rows: dict[tuple[int, int], np.ndarray]
    by_root: dict[int, np.ndarray]
    by_parent: dict[int, np.ndarray]
    marginal: np.ndarray
    pooled_parents: frozenset[int] = frozenset()
    parent2: str | None = None
    pooled_parents2: frozenset[int] = frozenset()
    rows2: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict)
    by_pair: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def distribution(self, u: int, y: int, z: int = -1) -> np.ndarray:
        """``P(X | u, y[, z])``: the published row, else the back-off described in the module docstring."""
        if y in self.pooled_parents or y == _UNPUBLISHED:
            y = POOLED
        base = self._distribution2(u, y)
        if self.parent2 is None:
            return base
        if z in self.pooled_parents2 or z == _UNPUBLISHED:
            z = POOLED
        row = self.rows2.get((u, y, z))
        if row is not None:
            return row
        pair = self.by_pair.get((y, z))
        if pair is None:
            return base
        pooled = pair * (base > 0)
        total = pooled.sum()
        return pooled / total if total > 0 else base

    def _distribution2(self, u: int, y: int) -> np.ndarray:
        row = self.rows.get((u, y))
        if row is not None:
            return row
        root_row = self.by_root.get(u, self.marginal)
        if self.parent is None:
            return root_row
        parent_row = self.by_parent.get(y)
        if parent_row is None:
            return root_row
        pooled = parent_row * (root_row > 0)
        total = pooled.sum()
        return pooled / total if total > 0 else root_row


@dataclass(frozen=True)
class TreeNetwork:
    """A root variable plus a Chow-Liu tree of variables, each conditioned on the root and its parents.

    Attributes:
        root: Root variable name.
        root_categories: Its category labels.
        root_probs: Weighted root distribution (suppressed cells set to 0).
        nodes: Node tables in ancestral (parents first) order.
        k: Small-cell threshold in unweighted records.
        edge_scores: Bias-corrected conditional mutual information of each tree edge, ``child -> nats``.
        second_scores: Bias-corrected ``I(X; Z | root, Y)`` of each second parent, ``child -> nats``.
    """

    root: str
    root_categories: tuple[str, ...]
    root_probs: np.ndarray
    nodes: tuple[NodeTable, ...]
    k: int
    edge_scores: dict[str, float] = field(default_factory=dict)
    second_scores: dict[str, float] = field(default_factory=dict)

    @property
    def variables(self) -> list[str]:
        return [self.root, *(n.name for n in self.nodes)]

    def sample_indices(
        self, n: int, rng: np.random.Generator, method: Literal["systematic", "iid"] = "systematic"
    ) -> dict[str, np.ndarray]:
        """Ancestral sampling of ``n`` draws; returns category indices, one array per variable."""
        if method not in ("systematic", "iid"):
            raise PersonaLabError(f"sampling method {method!r}: expected 'systematic' or 'iid'")
        codes: dict[str, np.ndarray] = {}
        if method == "systematic":
            counts = systematic_counts(self.root_probs, n, float(rng.random()))
            root = rng.permutation(np.repeat(np.arange(len(self.root_probs)), counts))
        else:
            root = _draw(np.cumsum(self.root_probs)[None, :], np.zeros(n, dtype=np.int64), rng.random(n))
        codes[self.root] = root
        for node in self.nodes:
            y = codes[node.parent] if node.parent is not None else np.full(n, -1, dtype=np.int64)
            z = codes[node.parent2] if node.parent2 is not None else np.full(n, -1, dtype=np.int64)
            key = (root.astype(np.int64) << 40) + ((y + 1) << 20) + (z + 1)
            uniq, group = np.unique(key, return_inverse=True)
            mask = (1 << 20) - 1
            probs = np.stack(
                [node.distribution(int(q >> 40), int((q >> 20) & mask) - 1, int(q & mask) - 1) for q in uniq]
            )
            cdf = np.cumsum(probs, axis=1)
            points = _systematic_points(group, rng) if method == "systematic" else rng.random(n)
            codes[node.name] = _draw(cdf, group, points)
        return codes

    def sample_codes(
        self, n: int, rng: np.random.Generator, method: Literal["systematic", "iid"] = "systematic"
    ) -> pd.DataFrame:
        """Ancestral sampling of ``n`` draws; returns category labels, one column per variable."""
        codes = self.sample_indices(n, rng, method)
        out = {self.root: _labels(self.root_categories, codes[self.root])}
        for node in self.nodes:
            out[node.name] = _labels(node.categories, codes[node.name])
        return pd.DataFrame(out)


def _labels(categories: Sequence[Any], idx: np.ndarray) -> pd.Series:
    """Labels by index as an object column (pandas would otherwise infer a string dtype, None -> NaN)."""
    return pd.Series(np.asarray(categories, dtype=object)[idx], dtype=object)


def _systematic_points(group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per draw, the point ``(u_g + r) / m_g``: rank ``r`` is a random permutation within group ``g``."""
    n = len(group)
    g_count = int(group.max()) + 1 if n else 0
    sizes = np.bincount(group, minlength=g_count)
    offsets = rng.random(g_count)
    order = np.argsort(group + rng.random(n), kind="stable")  # by group, random order within
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[group[order]]
    return (offsets[group] + rank) / sizes[group]


def _draw(cdf: np.ndarray, group: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Category index per draw: the first ``k`` with ``cdf[group, k] > point`` (zero-mass tails excluded)."""
    cdf = cdf / cdf[:, -1:]
    k_count = cdf.shape[1]
    last = k_count - 1 - np.argmax((np.diff(cdf, prepend=0.0, axis=1) > 0)[:, ::-1], axis=1)
    cdf = np.where(np.arange(k_count)[None, :] >= last[:, None], np.inf, cdf)
    out = np.empty(len(points), dtype=np.int64)
    # Chunked to bound memory at (chunk x categories) comparisons.
    for s in range(0, len(points), 65536):
        sl = slice(s, s + 65536)
        out[sl] = (cdf[group[sl]] <= points[sl, None]).sum(axis=1)
    return out


def _normalize(v: np.ndarray) -> np.ndarray:
    total = v.sum()
    return v / total if total > 0 else v


def fit_tree_network(
    table: pd.DataFrame,
    weights: np.ndarray | pd.Series,
    *,
    root: str,
    k: int = 10,
    tree_root: str | None = None,
    second_parent_gain: float | None = 0.005,
) -> TreeNetwork:
    """Fit the root + Chow-Liu tree network to weighted categorical data.

    Args:
        table: One column per variable; values are category labels (``str``; no missing values).
        weights: Non-negative record weights (the person weight PWGTP).
        root: The column every other variable is conditioned on.
        k: Small-cell threshold: a table row is published only with at least ``k`` unweighted records.
        tree_root: The tree variable without a tree parent; default the one sharing most information
            with ``root``.
        second_parent_gain: Give a variable ``X`` with tree parent ``Y`` the second parent ``Z`` (a
            variable earlier in ancestral order) with the largest held-out gain in log-likelihood of
            ``X`` (see :func:`_second_parent`), when that gain is at least this many nats per record.
            ``None``: a pure tree-augmented network.

    Returns:
        The fitted network. Edge scores are the Miller-Madow corrected weighted ``I(X; Y | root)``; row
        publication and pooling follow the module docstring.
    """
    w = np.asarray(weights, dtype=float)
    if len(w) != len(table) or (w < 0).any() or not np.isfinite(w).all():
        raise PersonaLabError("weights: expected one finite non-negative weight per record")
    if table.isna().any().any():
        bad = table.columns[table.isna().any()].tolist()
        raise PersonaLabError(f"columns {bad}: missing values; encode 'not applicable' as a category")
    if root not in table.columns:
        raise PersonaLabError(f"root column {root!r} not in the table")
    cats: dict[str, tuple[str, ...]] = {}
    codes: dict[str, np.ndarray] = {}
    for col in table.columns:
        labels = sorted(table[col].astype(str).unique())
        cats[col] = tuple(labels)
        codes[col] = pd.Categorical(table[col].astype(str), categories=labels).codes.astype(np.int64)
    u = codes[root]
    ku = len(cats[root])
    root_w = np.bincount(u, weights=w, minlength=ku)
    root_n = np.bincount(u, minlength=ku)
    root_probs = _normalize(np.where(root_n >= k, root_w, 0.0))
    if root_probs.sum() <= 0:
        raise PersonaLabError(
            f"root {root!r}: no category holds {k} records ({len(table)} records in all); fit on more data"
        )

    names = [c for c in table.columns if c != root]
    m = len(names)
    scores = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            s = conditional_mutual_information(codes[names[i]], codes[names[j]], u, w, miller_madow=True)
            scores[i, j] = scores[j, i] = s
    if tree_root is None:
        start = int(np.argmax([mutual_information(codes[c], u, w) for c in names]))
    else:
        start = names.index(tree_root)
    parent = chow_liu_tree(scores, start) if m else []

    order: list[int] = [start] if m else []
    while len(order) < m:
        order += [j for j in range(m) if parent[j] in order and j not in order]
    # Categories held by fewer than k records are not published: their records count for no category
    # of the variable's own tables (code -1) and fall into the pooled parent category of its children.
    for col in names:
        counts = np.bincount(codes[col], minlength=len(cats[col]))
        kept = np.flatnonzero(counts >= k)
        if len(kept) < len(cats[col]):
            remap = np.full(len(cats[col]), -1, dtype=np.int64)
            remap[kept] = np.arange(len(kept))
            codes[col] = remap[codes[col]]
            cats[col] = tuple(cats[col][i] for i in kept)
    nodes = []
    second_scores: dict[str, float] = {}
    folds = np.random.default_rng(_FOLD_SEED).permutation(len(w)) % 2
    for pos, j in enumerate(order):
        name = names[j]
        x, kx = codes[name], len(cats[name])
        p_name = names[parent[j]] if parent[j] >= 0 else None
        y = codes[p_name] if p_name else None
        ky = len(cats[p_name]) if p_name else 1
        z_name: str | None = None
        if second_parent_gain is not None and p_name is not None:
            candidates = [names[i] for i in order[:pos] if i != parent[j]]
            best = _second_parent(
                x, kx, u, ku, codes[p_name], ky, candidates, codes, cats, w, k, folds, second_parent_gain
            )
            if best is not None and best[1] >= second_parent_gain:
                z_name, second_scores[name] = best
        nodes.append(
            _fit_node(
                name,
                cats[name],
                x,
                u,
                ku,
                w,
                k,
                parent=p_name,
                y=y,
                ky=ky,
                parent2=z_name,
                z=codes[z_name] if z_name else None,
                kz=len(cats[z_name]) if z_name else 0,
            )
        )
    edge_scores = {names[j]: float(scores[j, parent[j]]) for j in range(m) if parent[j] >= 0}
    return TreeNetwork(
        root=root,
        root_categories=cats[root],
        root_probs=root_probs,
        nodes=tuple(nodes),
        k=k,
        edge_scores=edge_scores,
        second_scores=second_scores,
    )


_FOLD_SEED = 2018
"""Seed of the fixed two-fold split used to score candidate second parents on held-out records."""


def _nonneg(v: np.ndarray) -> np.ndarray:
    """Codes with the unpublished category ``-1`` moved to an extra last index (for statistics only)."""
    return np.where(v < 0, int(v.max()) + 1, v) if len(v) and v.min() < 0 else v


def _pool_rare(v: np.ndarray, kv: int, k: int) -> tuple[np.ndarray, int, list[int], frozenset[int]]:
    """Pool categories held by fewer than ``k`` records (and unpublished ones, ``-1``) into one extra
    index, stored as ``POOLED``."""
    rare = np.flatnonzero(np.bincount(v[v >= 0], minlength=kv) < k)
    unpublished = v < 0
    if not len(rare) and not unpublished.any():
        return v, kv, list(range(kv)), frozenset()
    pooled = np.where(np.isin(v, rare) | unpublished, kv, v)
    return pooled, kv + 1, [*range(kv), POOLED], frozenset(int(r) for r in rare)


def _fit_node(
    name: str,
    categories: tuple[str, ...],
    x: np.ndarray,
    u: np.ndarray,
    ku: int,
    w: np.ndarray,
    k: int,
    *,
    parent: str | None = None,
    y: np.ndarray | None = None,
    ky: int = 1,
    parent2: str | None = None,
    z: np.ndarray | None = None,
    kz: int = 0,
) -> NodeTable:
    """The tables of one variable from weighted counts, published and pooled as in the module docstring."""
    kx = len(categories)
    published = (x >= 0).astype(float)  # records of unpublished categories count for no row of X
    x = np.where(x >= 0, x, 0)
    w = w * published
    if y is None:
        y, ky, y_index, pooled = np.zeros(len(x), dtype=np.int64), 1, [-1], frozenset[int]()
    else:
        y, ky, y_index, pooled = _pool_rare(y, ky, k)
    flat = (u * ky + y) * kx + x
    cube_w = np.bincount(flat, weights=w, minlength=ku * ky * kx).reshape(ku, ky, kx)
    cube_n = np.bincount(flat, weights=published, minlength=ku * ky * kx).reshape(ku, ky, kx).sum(-1)
    rows = {
        (int(a), y_index[b]): _normalize(cube_w[a, b])
        for a, b in np.argwhere(cube_n >= k)
        if cube_w[a, b].sum() > 0
    }
    root_w, root_n = cube_w.sum(1), cube_n.sum(1)
    by_root = {int(a): _normalize(root_w[a]) for a in np.flatnonzero(root_n >= k) if root_w[a].sum() > 0}
    par_w, par_n = cube_w.sum(0), cube_n.sum(0)
    by_parent = (
        {y_index[b]: _normalize(par_w[b]) for b in np.flatnonzero(par_n >= k) if par_w[b].sum() > 0}
        if parent
        else {}
    )
    extra: dict[str, Any] = {}
    if parent2 is not None and z is not None:
        z, kz, z_index, pooled2 = _pool_rare(z, kz, k)
        flat = ((u * ky + y) * kz + z) * kx + x
        cube4_w = np.bincount(flat, weights=w, minlength=ku * ky * kz * kx).reshape(ku, ky, kz, kx)
        cube4_n = np.bincount(flat, weights=published, minlength=ku * ky * kz * kx)
        cube4_n = cube4_n.reshape(ku, ky, kz, kx).sum(-1)
        pair_w, pair_n = cube4_w.sum(0), cube4_n.sum(0)
        extra = {
            "parent2": parent2,
            "pooled_parents2": pooled2,
            "rows2": {
                (int(a), y_index[b], z_index[c]): _normalize(cube4_w[a, b, c])
                for a, b, c in np.argwhere(cube4_n >= k)
                if cube4_w[a, b, c].sum() > 0
            },
            "by_pair": {
                (y_index[b], z_index[c]): _normalize(pair_w[b, c])
                for b, c in np.argwhere(pair_n >= k)
                if pair_w[b, c].sum() > 0
            },
        }
    return NodeTable(
        name=name,
        categories=categories,
        parent=parent,
        rows=rows,
        by_root=by_root,
        by_parent=by_parent,
        marginal=_normalize(cube_w.sum((0, 1))),
        pooled_parents=pooled,
        **extra,
    )


def _mean_log_likelihood(
    node: NodeTable, x: np.ndarray, u: np.ndarray, y: np.ndarray, z: np.ndarray | None, w: np.ndarray
) -> float:
    """Weighted mean ``log P(x | u, y[, z])`` under ``node``'s tables (probabilities floored at 1e-6)."""
    keep = x >= 0  # held-out records of unpublished categories are not scored
    x, u, y, w = x[keep], u[keep], y[keep], w[keep]
    zz = np.full(len(x), -1, dtype=np.int64) if z is None else z[keep]
    y, zz = np.where(y < 0, _UNPUBLISHED, y), np.where((zz < 0) & (z is not None), _UNPUBLISHED, zz)
    key = (u.astype(np.int64) << 40) + ((y + 1) << 20) + (zz + 1)
    uniq, inv = np.unique(key, return_inverse=True)
    mask = (1 << 20) - 1
    table = np.stack(
        [node.distribution(int(q >> 40), int((q >> 20) & mask) - 1, int(q & mask) - 1) for q in uniq]
    )
    p = np.maximum(table[inv, x], 1e-6)
    return float(np.average(np.log(p), weights=w))


def _second_parent(
    x: np.ndarray,
    kx: int,
    u: np.ndarray,
    ku: int,
    y: np.ndarray,
    ky: int,
    candidates: list[str],
    codes: Mapping[str, np.ndarray],
    cats: Mapping[str, tuple[str, ...]],
    w: np.ndarray,
    k: int,
    folds: np.ndarray,
    min_gain: float,
) -> tuple[str, float] | None:
    """The second parent with the largest held-out gain in mean log-likelihood (nats per person).

    Candidates are screened by the Miller-Madow corrected ``I(X; Z | root, Y)`` and ``I(X; Z | Y)`` (the
    three largest of each, if the first reaches ``min_gain``); each survivor is scored by two-fold cross-validation: tables fitted on one
    half (with the same suppression rules), log-likelihood of ``X`` on the other half, with versus
    without ``Z``. Held-out scoring penalizes parents whose apparent information is sparse-cell noise.
    On small data the two halves' tables are so sparse that the comparison is noisy and can admit a
    parent without real information; on the 146,727 records of 2018 most candidates lose likelihood.
    """
    if not candidates:
        return None
    xs, ys = _nonneg(x), _nonneg(y)  # for the screening statistics only
    cond_uy = u * (int(ys.max()) + 1) + ys
    by_uy = [
        conditional_mutual_information(xs, _nonneg(codes[c]), cond_uy, w, miller_madow=True)
        for c in candidates
    ]
    by_y = [
        conditional_mutual_information(xs, _nonneg(codes[c]), ys, w, miller_madow=True) for c in candidates
    ]
    # The held-out gain of Z cannot exceed I(X; Z | root, Y) (in expectation), so candidates below the
    # threshold are not scored. The estimate still favours many-category candidates (sparse strata), so
    # the shortlist also takes the best by I(X; Z | Y), whose strata are few.
    ranked = [*np.argsort(by_uy)[::-1][:3], *np.argsort(by_y)[::-1][:3]]
    shortlist = sorted({candidates[i] for i in ranked if by_uy[i] >= min_gain})
    if not shortlist:
        return None
    cats_x = tuple(str(i) for i in range(kx))

    def heldout_gain(z: np.ndarray, kz: int) -> float:
        gain = 0.0
        for f in (0, 1):
            tr, te = folds != f, folds == f
            common: dict[str, Any] = {"parent": "y", "y": y[tr], "ky": ky}
            base = _fit_node("x", cats_x, x[tr], u[tr], ku, w[tr], k, **common)
            cand = _fit_node("x", cats_x, x[tr], u[tr], ku, w[tr], k, parent2="z", z=z[tr], kz=kz, **common)
            ll_base = _mean_log_likelihood(base, x[te], u[te], y[te], None, w[te])
            ll_cand = _mean_log_likelihood(cand, x[te], u[te], y[te], z[te], w[te])
            gain += (ll_cand - ll_base) / 2
        return gain

    gains = {c: heldout_gain(codes[c], len(cats[c])) for c in sorted(shortlist)}
    best = max(gains, key=gains.__getitem__)
    return best, gains[best]


# --------------------------------------------------------------------------------------------------------
# The census model: the network over the persona frame, plus age and income within their bands
# --------------------------------------------------------------------------------------------------------


def _age_band_labels(starts: Sequence[int], max_age: int) -> list[str]:
    ends = [s - 1 for s in starts[1:]] + [max_age]
    return [f"{a:02d}-{b:02d}" for a, b in zip(starts, ends, strict=True)]


def _income_band_labels(edges: Sequence[float]) -> list[str]:
    lows = [0.0, *edges]
    highs = [*edges, math.inf]
    return [
        f"p{i + 1:02d} ({lo:.0f}, {'inf' if math.isinf(hi) else f'{hi:.0f}'}]"
        for i, (lo, hi) in enumerate(zip(lows, highs, strict=True))
    ]


@dataclass(frozen=True)
class CensusModel:
    """A fitted census model: draws persona frames without microdata (implements ``CensusSource``).

    Attributes:
        network: The root + Chow-Liu tree network over the discretized persona attributes.
        age_band_starts: First age of each age band (see :data:`AGE_BAND_STARTS`).
        max_age: Largest age (AGEP top code).
        age_within_band: Per age band label, the single years and their weighted probabilities.
        age_within_band_education: The same per (age band, education) with at least ``k`` records:
            grade levels and degrees pin down single years that the bands leave open (a 10-14 year old in
            grade 9 is 14), so a persona's age agrees with its education as often as in the data. The
            key ``(band, "<absent>")`` pools a band's education levels with fewer than ``k`` records.
        income_edges: Upper edges of the positive income bands except the last (weighted quantiles).
        income_within_band: Per income band label, stored weighted quantiles at equally spaced levels.
        metadata: Provenance: survey, year, states, record count, suppression rule, refit command.
    """

    network: TreeNetwork
    age_band_starts: tuple[int, ...]
    max_age: int
    age_within_band: dict[str, tuple[np.ndarray, np.ndarray]]
    income_edges: tuple[float, ...]
    income_within_band: dict[str, np.ndarray]
    metadata: dict[str, Any]
    age_within_band_education: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )

    # -- discretization (shared by fitting, sampling and fidelity checks) --

    @property
    def age_band_labels(self) -> list[str]:
        return _age_band_labels(self.age_band_starts, self.max_age)

    def age_band(self, age: Any) -> pd.Series:
        """The model's age band label of each age (ints 0..max_age)."""
        return _age_bands(pd.Series(age), self.age_band_starts, self.max_age)

    def income_band(self, income: Any) -> pd.Series:
        """The model's income band label of each income (NaN: ``"<absent>"``)."""
        return _income_bands(pd.Series(income), self.income_edges)

    # -- sampling --

    def sample(
        self, n: int, rng: np.random.Generator, method: Literal["systematic", "iid"] = "systematic"
    ) -> pd.DataFrame:
        """Draw ``n`` personas as a persona frame.

        ``weight`` is 1.0, ``serialno`` is synthetic (``model-000001``, each persona its own household),
        ``state`` is ``"model"``. ``method`` is the network's sampling scheme (systematic by default).
        The same generator state gives the same frame on any machine.
        """
        if n < 0:
            raise PersonaLabError(f"cannot sample {n} personas: expected n >= 0")
        if n == 0:
            return _empty_frame()
        net = self.network
        codes = net.sample_indices(n, rng, method)
        band_labels = self.age_band_labels
        root_band = np.asarray([band_labels.index(c.split("|", 1)[0]) for c in net.root_categories])
        root_sex = np.asarray([c.split("|", 1)[1] for c in net.root_categories], dtype=object)
        band = root_band[codes[net.root]]
        nodes = {node.name: node for node in net.nodes}
        education = nodes[AGE_DETAIL].categories
        age = np.empty(n, dtype=np.int64)
        pair_key = band * len(education) + codes[AGE_DETAIL]
        for key in np.unique(pair_key):
            pos = np.flatnonzero(pair_key == key)
            b, e = band_labels[key // len(education)], education[key % len(education)]
            table = self.age_within_band_education
            ages, probs = table.get((b, e)) or table.get((b, ABSENT)) or self.age_within_band[b]
            cdf = np.cumsum(probs)[None, :]
            age[pos] = ages[_draw(cdf, np.zeros(len(pos), np.int64), rng.random(len(pos)))]
        income = np.full(n, np.nan)
        income_idx = codes["income"]
        for i in np.unique(income_idx):
            label = nodes["income"].categories[i]
            pos = np.flatnonzero(income_idx == i)
            if label == ABSENT:
                continue
            if label == "0":
                income[pos] = 0.0
                continue
            q = self.income_within_band[label]
            levels = np.linspace(0.0, 1.0, len(q))
            income[pos] = np.round(np.interp(rng.random(len(pos)), levels, q))
        out: dict[str, Any] = {"age": age, "sex": pd.Series(root_sex[codes[net.root]], dtype=object)}
        for col in CENSUS_ATTRIBUTES:
            if col == "income":
                out[col] = income
            elif col not in out:
                out[col] = _labels(nodes[col].categories, codes[col])
        for col in OPTIONAL_ATTRIBUTES:
            cats = [None if c == ABSENT else c for c in nodes[col].categories]
            out[col] = _labels(cats, codes[col])
        width = max(6, len(str(n)))
        out["weight"] = np.ones(n)
        out["serialno"] = pd.Series([f"model-{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
        out["state"] = pd.Series(np.full(n, "model", dtype=object), dtype=object)
        return pd.DataFrame(out, columns=[*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, *META_COLUMNS])

    # -- persistence --

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters: category labels, probabilities rounded to 7 decimals, no records."""
        net = self.network
        nodes = []
        for node in net.nodes:
            nodes.append(
                {
                    "name": node.name,
                    "parent": node.parent,
                    "edge_score_nats": round(net.edge_scores.get(node.name, 0.0), 6),
                    "categories": list(node.categories),
                    "pooled_parent_categories": sorted(node.pooled_parents),
                    "marginal": _plist(node.marginal),
                    "by_root": {str(a): _sparse(p) for a, p in sorted(node.by_root.items())},
                    "by_parent": {str(b): _sparse(p) for b, p in sorted(node.by_parent.items())},
                    "rows": {f"{a},{b}": _sparse(p) for (a, b), p in sorted(node.rows.items())},
                    "parent2": node.parent2,
                    "second_score_nats": round(net.second_scores.get(node.name, 0.0), 6),
                    "pooled_parent2_categories": sorted(node.pooled_parents2),
                    "rows2": {",".join(map(str, key)): _sparse(p) for key, p in sorted(node.rows2.items())},
                    "by_pair": {
                        ",".join(map(str, key)): _sparse(p) for key, p in sorted(node.by_pair.items())
                    },
                }
            )
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "metadata": self.metadata,
            "age": {
                "band_starts": list(self.age_band_starts),
                "max_age": self.max_age,
                "within_band": {
                    b: {"ages": [int(a) for a in ages], "probs": _plist(p)}
                    for b, (ages, p) in self.age_within_band.items()
                },
                "within_band_by_education": [
                    {"band": b, "education": e, "ages": [int(a) for a in ages], "probs": _plist(p)}
                    for (b, e), (ages, p) in self.age_within_band_education.items()
                ],
            },
            "income": {
                "positive_edges": [float(e) for e in self.income_edges],
                "within_band_quantiles": {
                    b: [float(v) for v in q] for b, q in self.income_within_band.items()
                },
            },
            "network": {
                "root": net.root,
                "k": net.k,
                "root_categories": list(net.root_categories),
                "root_probs": _plist(net.root_probs),
                "nodes": nodes,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CensusModel:
        """Rebuild a model from :meth:`to_dict` output (probabilities as stored, checked to sum to 1)."""
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a {MODEL_FORMAT} document")
        if data.get("format_version") != MODEL_FORMAT_VERSION:
            raise ValueError(f"format_version {data.get('format_version')}, expected {MODEL_FORMAT_VERSION}")
        net = data["network"]
        nodes = []
        for nd in net["nodes"]:
            kx = len(nd["categories"])
            nodes.append(
                NodeTable(
                    name=nd["name"],
                    categories=tuple(nd["categories"]),
                    parent=nd["parent"],
                    rows={_key(s): _dense(p, kx) for s, p in nd["rows"].items()},
                    by_root={int(a): _dense(p, kx) for a, p in nd["by_root"].items()},
                    by_parent={int(b): _dense(p, kx) for b, p in nd["by_parent"].items()},
                    marginal=_parr(nd["marginal"], kx),
                    pooled_parents=frozenset(int(i) for i in nd["pooled_parent_categories"]),
                    parent2=nd.get("parent2"),
                    pooled_parents2=frozenset(int(i) for i in nd.get("pooled_parent2_categories", [])),
                    rows2={_key3(s): _dense(p, kx) for s, p in nd.get("rows2", {}).items()},
                    by_pair={_key(s): _dense(p, kx) for s, p in nd.get("by_pair", {}).items()},
                )
            )
        network = TreeNetwork(
            root=net["root"],
            root_categories=tuple(net["root_categories"]),
            root_probs=_parr(net["root_probs"], len(net["root_categories"])),
            nodes=tuple(nodes),
            k=int(net["k"]),
            edge_scores={nd["name"]: float(nd["edge_score_nats"]) for nd in net["nodes"] if nd["parent"]},
            second_scores={
                nd["name"]: float(nd["second_score_nats"]) for nd in net["nodes"] if nd.get("parent2")
            },
        )
        age = data["age"]
        income = data["income"]
        return cls(
            network=network,
            age_band_starts=tuple(int(s) for s in age["band_starts"]),
            max_age=int(age["max_age"]),
            age_within_band={
                b: (np.asarray(v["ages"], dtype=np.int64), _parr(v["probs"], len(v["ages"])))
                for b, v in age["within_band"].items()
            },
            age_within_band_education={
                (v["band"], v["education"]): (
                    np.asarray(v["ages"], dtype=np.int64),
                    _parr(v["probs"], len(v["ages"])),
                )
                for v in age.get("within_band_by_education", [])
            },
            income_edges=tuple(float(e) for e in income["positive_edges"]),
            income_within_band={
                b: np.asarray(q, dtype=float) for b, q in income["within_band_quantiles"].items()
            },
            metadata=dict(data["metadata"]),
        )

    def save(self, path: str | Path) -> Path:
        """Write the parameters as JSON, atomically."""
        return write_text(path, json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CensusModel:
        """Read a model written by :meth:`save`; a missing or corrupt file is a ``PersonaLabError``."""
        p = Path(path)
        if not p.is_file():
            raise PersonaLabError(f"{p}: census model file is missing; refit it with `{REFIT_COMMAND}`")
        try:
            return cls.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise PersonaLabError(
                f"{p}: not a valid census model ({type(exc).__name__}: {exc}); refit it with `{REFIT_COMMAND}`"
            ) from exc


def _plist(p: np.ndarray) -> list[float]:
    return [0 if v == 0 else round(float(v), _ROUND) for v in p]


def _sparse(p: np.ndarray) -> list[list[float]]:
    """Sparse row: ``[[category index, probability], ...]`` over the non-zero stored probabilities."""
    return [[int(i), v] for i, v in enumerate(_plist(p)) if v != 0]


def _dense(pairs: Sequence[Sequence[float]], k: int) -> np.ndarray:
    arr = np.zeros(k)
    for i, v in pairs:
        if not (isinstance(i, int) and 0 <= i < k):
            raise ValueError(f"category index {i!r} outside 0..{k - 1}")
        arr[i] = v
    return _parr(arr, k)


def _parr(values: Sequence[float] | np.ndarray, k: int) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (k,) or (arr < 0).any() or not np.isfinite(arr).all() or abs(arr.sum() - 1) > 1e-4:
        raise ValueError(
            f"probability vector of length {len(arr)} is not {k} non-negative numbers summing to 1"
        )
    return arr  # kept as stored (rounded); sampling normalizes cumulative sums


def _key(s: str) -> tuple[int, int]:
    a, b = s.split(",")
    return int(a), int(b)


def _key3(s: str) -> tuple[int, int, int]:
    a, b, c = s.split(",")
    return int(a), int(b), int(c)


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES)})
    frame["age"] = frame["age"].astype(np.int64)
    frame["income"] = frame["income"].astype(float)
    frame["weight"] = pd.Series(dtype=float)
    frame["serialno"] = pd.Series(dtype=object)
    frame["state"] = pd.Series(dtype=object)
    return frame


def _age_bands(age: pd.Series, starts: Sequence[int], max_age: int) -> pd.Series:
    a = pd.to_numeric(age, errors="coerce")
    if a.isna().any() or (a < 0).any() or (a > max_age).any():
        bad = age[a.isna() | (a < 0) | (a > max_age)].iloc[0]
        raise PersonaLabError(f"column 'age': value {bad!r} is not an age in 0..{max_age}")
    labels = np.asarray(_age_band_labels(starts, max_age), dtype=object)
    idx = np.searchsorted(np.asarray(starts), a.to_numpy(dtype=np.int64), side="right") - 1
    return pd.Series(labels[idx], index=age.index)


def _income_bands(income: pd.Series, edges: Sequence[float]) -> pd.Series:
    v = pd.to_numeric(income, errors="coerce").to_numpy(dtype=float)
    labels = np.asarray(_income_band_labels(edges), dtype=object)
    pos = labels[np.minimum(np.searchsorted(np.asarray(edges, dtype=float), v, side="left"), len(labels) - 1)]
    out = np.where(np.isnan(v), ABSENT, np.where(v < 0, "negative", np.where(v == 0, "0", pos)))
    return pd.Series(out, index=income.index, dtype=object)


def _network_table(frame: pd.DataFrame, model_age: Any, model_income: Any) -> pd.DataFrame:
    table = pd.DataFrame(index=frame.index)
    table[ROOT] = model_age(frame["age"]) + "|" + frame["sex"].astype(str)
    for col in CENSUS_ATTRIBUTES:
        if col in ("age", "sex"):
            continue
        table[col] = model_income(frame[col]) if col == "income" else frame[col].astype(str)
    for col in OPTIONAL_ATTRIBUTES:
        table[col] = frame[col].where(frame[col].notna(), ABSENT).astype(str)
    return table.reset_index(drop=True)


def _check_frame(frame: pd.DataFrame) -> None:
    required = (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, "weight")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PersonaLabError(
            f"persona frame: missing columns {missing}; build it with persona_lab.census.load_persona_frame"
        )
    if len(frame) == 0:
        raise PersonaLabError("persona frame: no records to fit the census model to")
    for col in (*CENSUS_ATTRIBUTES,):
        if col != "income" and frame[col].isna().any():
            row = int(np.flatnonzero(frame[col].isna().to_numpy())[0])
            raise PersonaLabError(f"persona frame row {row}, column {col!r}: missing value, expected a label")
    w = pd.to_numeric(frame["weight"], errors="coerce")
    if w.isna().any() or (w < 0).any():
        raise PersonaLabError("persona frame column 'weight': expected non-negative numbers (PWGTP)")


def fit_census_model(
    frame: pd.DataFrame,
    *,
    k: int = 10,
    age_band_starts: Sequence[int] = AGE_BAND_STARTS,
    max_age: int = 99,
    income_quantile_levels: int = 21,
    second_parent_gain: float | None = 0.005,
    metadata: Mapping[str, Any] | None = None,
) -> CensusModel:
    """Fit the embedded census model to a persona frame (see the module docstring for every rule).

    Args:
        frame: A persona frame from ``load_persona_frame`` (weights = PWGTP).
        k: Small-cell threshold in unweighted records.
        age_band_starts: First age of each age band; must start at 0.
        max_age: Largest age.
        income_quantile_levels: Stored within-band income quantiles per band (at most; fewer when the band
            has under ``k`` records per level).
        second_parent_gain: Minimum held-out gain (nats per person) for a second parent; ``None``: a
            pure tree-augmented network (see :func:`fit_tree_network`).
        metadata: Provenance to store (survey, year, states); merged over the computed fields.

    Returns:
        The fitted :class:`CensusModel`.
    """
    _check_frame(frame)
    if age_band_starts[0] != 0 or list(age_band_starts) != sorted(set(age_band_starts)):
        raise PersonaLabError(f"age bands {list(age_band_starts)}: expected increasing starts beginning at 0")
    w = pd.to_numeric(frame["weight"]).to_numpy(dtype=float)
    starts = tuple(int(s) for s in age_band_starts)
    age_band = _age_bands(frame["age"], starts, max_age)  # a value that is no age: PersonaLabError
    age = pd.to_numeric(frame["age"]).astype(np.int64)

    income = pd.to_numeric(frame["income"], errors="coerce").to_numpy(dtype=float)
    positive = income > 0
    levels = np.arange(1, INCOME_POSITIVE_BANDS) / INCOME_POSITIVE_BANDS
    edges = tuple(float(np.round(e)) for e in weighted_quantiles(income[positive], w[positive], levels))
    income_band = _income_bands(pd.Series(income), edges)

    age_within: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for label in _age_band_labels(starts, max_age):
        sel = (age_band == label).to_numpy()
        years = np.arange(int(label[:2]), int(label[3:]) + 1)
        counts = np.bincount(age.to_numpy()[sel] - years[0], weights=w[sel], minlength=len(years))
        if counts.sum() <= 0:
            counts = np.ones(len(years))
        age_within[label] = (years, counts / counts.sum())
    age_within_education: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    education = frame[AGE_DETAIL].astype(str).to_numpy()
    pairs = pd.Series(np.arange(len(frame))).groupby([age_band.to_numpy(), education])
    rare: dict[str, list[np.ndarray]] = {}
    for (label, level), idx in pairs:
        pos = idx.to_numpy()
        if len(pos) < k:
            rare.setdefault(str(label), []).append(pos)
            continue
        years = age_within[label][0]
        counts = np.bincount(age.to_numpy()[pos] - years[0], weights=w[pos], minlength=len(years))
        if counts.sum() > 0:
            age_within_education[(str(label), str(level))] = (years, counts / counts.sum())
    # Education levels with fewer than k records in a band share one pooled distribution of that band.
    for label, parts in rare.items():
        pos = np.concatenate(parts)
        years = age_within[label][0]
        counts = np.bincount(age.to_numpy()[pos] - years[0], weights=w[pos], minlength=len(years))
        if len(pos) >= k and counts.sum() > 0:
            age_within_education[(label, ABSENT)] = (years, counts / counts.sum())

    income_within: dict[str, np.ndarray] = {}
    for label in _income_band_labels(edges) + ["negative"]:
        sel = (income_band == label).to_numpy()
        vals, ws = income[sel], w[sel]
        if len(vals) == 0:
            continue
        n_levels = int(min(income_quantile_levels, max(2, len(vals) // k)))
        srt = np.sort(vals)
        kk = min(k, len(srt)) - 1
        lo, hi = srt[kk], srt[len(srt) - 1 - kk]
        income_within[label] = np.round(
            weighted_quantiles(np.clip(vals, min(lo, hi), max(lo, hi)), ws, np.linspace(0, 1, n_levels))
        )

    model_age = lambda a: _age_bands(a, starts, max_age)  # noqa: E731
    model_income = lambda v: _income_bands(v, edges)  # noqa: E731
    table = _network_table(frame, model_age, model_income)
    network = fit_tree_network(table, w, root=ROOT, k=k, second_parent_gain=second_parent_gain)
    meta: dict[str, Any] = {
        "description": "Embedded census model of the persona attributes: a Bayesian network (root = age "
        "band x sex, Chow-Liu tree on weighted conditional mutual information, second parents kept on "
        "held-out likelihood gain) of weighted conditional probability tables with small-cell suppression. "
        "Parameters only, no records.",
        "second_parent_min_gain_nats": second_parent_gain,
        "records": int(len(frame)),
        "weighted_population": float(w.sum()),
        "weight": "PWGTP",
        "suppression_k": k,
        "suppression_rule": f"categories with < {k} unweighted records are not published (as parents they "
        f"are pooled into one 'other' category); a conditional probability row is published only with "
        f">= {k} unweighted records, "
        "otherwise P(X|y) restricted to the support of P(X|age band, sex), else P(X|age band, sex), else P(X); "
        f"stored income quantiles exclude the {k - 1} most extreme records of each band",
        "age": "age bands split at the ACS universe thresholds 3, 5, 15, 16, 17, 18, 51 and every 5 years; "
        "single years drawn from each band's weighted single-year distribution",
        "income": "PINCP bands: negative, 0, weighted deciles of positive income; dollars interpolated "
        "between the band's stored weighted quantiles",
        "refit_command": REFIT_COMMAND,
    }
    meta.update(metadata or {})
    fitted = CensusModel(
        network=network,
        age_band_starts=starts,
        max_age=max_age,
        age_within_band=age_within,
        age_within_band_education=age_within_education,
        income_edges=edges,
        income_within_band=income_within,
        metadata=meta,
    )
    # Quantize to the stored precision so the fitted model and its saved file sample identically.
    return CensusModel.from_dict(json.loads(json.dumps(fitted.to_dict())))


def load_embedded_model(path: str | Path | None = None) -> CensusModel:
    """The census model shipped in ``data/census_model.json`` (or ``path``).

    Raises:
        PersonaLabError: the file is missing or corrupt; the message names the refit command.
    """
    return CensusModel.load(EMBEDDED_MODEL_PATH if path is None else path)
