"""The network of the embedded census model: a root variable and a Chow-Liu tree of categorical variables.

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

Sampling is ancestral. By default each table is sampled *systematically* (a low-variance, unbiased
allocation: within every group of draws that share the same parent values, the counts of each category
are within one of their expectation, and the assignment to draws is a random permutation), which removes
most of the multinomial noise of i.i.d. draws; ``method="iid"`` draws independently instead (Madow 1949)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_lab.census._stats import conditional_mutual_information, mutual_information, systematic_counts
from persona_lab.errors import PersonaLabError

__all__ = ["NodeTable", "TreeNetwork", "chow_liu_tree", "fit_tree_network"]

POOLED = -2
"""Table index of the pooled "other" parent category (parent categories with fewer than ``k`` records)."""

_UNPUBLISHED = (1 << 20) - 2
"""Parent code of an unpublished category (under ``k`` records) when scoring held-out records."""


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
