"""Cohen's kappa for two raters, and for every pair of many raters at once.

PERSONA (Castricato et al. 2024, Sec. 4 and Figs. 5-9) measures agreement between annotators (people, or
LLMs role-playing a persona) with Cohen's kappa over the items both rated:

    kappa = (p_o - p_e) / (1 - p_e),

``p_o`` the share of shared items on which the two raters gave the same label, ``p_e`` the agreement expected by
chance from each rater's own label shares over those same items (Cohen 1960). Conventions, the same as
``sklearn.metrics.cohen_kappa_score`` on the pair's shared items:

- **Missing labels**: an item one rater did not rate (no row, or a missing choice) is left out of that pair
  only; each pair uses exactly the items both rated, and its chance term uses the two raters' label shares over
  those items.
- **Perfect agreement** with at least two labels used: kappa is exactly 1.0.
- **One class only**: both raters gave the same single label on every shared item. Agreement is perfect but
  chance agreement is 1 as well, so kappa is 0/0: NaN, reason ``"one class only"``. (A rater who always gives
  the same label while the other varies gets kappa 0: no agreement beyond chance.)
- **No shared items**: NaN, reason ``"no shared items"``.

:func:`kappa_matrix` computes the rater x rater matrix with a handful of matrix products over one-hot indicator
matrices (no loop over pairs). In counts over the ``n`` shared items, with ``a`` agreements and ``m_c``,
``m'_c`` the two raters' counts of label ``c`` on those items::

    kappa = (n * a - sum_c m_c m'_c) / (n**2 - sum_c m_c m'_c)

which is exact integer arithmetic in float64 until the final division (counts below 2**26), so the values match
a per-pair ``cohen_kappa_score`` loop to the last few bits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError

NO_SHARED_ITEMS = "no shared items"
"""Reason of a NaN kappa: the two raters rated no item in common."""
ONE_CLASS_ONLY = "one class only"
"""Reason of a NaN kappa: both raters gave one and the same label on every shared item (kappa is 0/0)."""

LABEL_COLUMNS = ("rater", "item", "choice")
"""The columns :func:`kappa_matrix` reads: who rated, what, and the label given."""


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


@dataclass(frozen=True)
class Kappa:
    """Cohen's kappa of one pair of raters, with what it was computed from.

    Attributes:
        kappa: the statistic, NaN when undefined (see ``reason``).
        n_items: items both raters labelled.
        observed: ``p_o``, the share of those items with the same label (NaN without shared items).
        expected: ``p_e``, the chance agreement from the two raters' label shares (NaN without shared items).
        reason: ``""``, :data:`NO_SHARED_ITEMS` or :data:`ONE_CLASS_ONLY`.
    """

    kappa: float
    n_items: int
    observed: float
    expected: float
    reason: str


def kappa_details(a: Sequence[object], b: Sequence[object]) -> Kappa:
    """Cohen's kappa of two aligned label sequences, with its parts (see the module docstring).

    Args:
        a: labels of rater A, one per item; ``None`` or NaN where A gave none.
        b: labels of rater B for the same items in the same order.

    Raises:
        PersonaLabError: the sequences differ in length.
    """
    if len(a) != len(b):
        raise PersonaLabError(
            f"cohen_kappa: the two raters' label sequences differ in length ({len(a)} and {len(b)}); "
            "align them item by item, with None where a rater gave no label"
        )
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not _missing(x) and not _missing(y)]
    n = len(pairs)
    if n == 0:
        return Kappa(float("nan"), 0, float("nan"), float("nan"), NO_SHARED_ITEMS)
    agree = sum(x == y for x, y in pairs)
    counts_a: dict[object, int] = {}
    counts_b: dict[object, int] = {}
    for x, y in pairs:
        counts_a[x] = counts_a.get(x, 0) + 1
        counts_b[y] = counts_b.get(y, 0) + 1
    chance = float(sum(c * counts_b.get(label, 0) for label, c in counts_a.items()))
    observed, expected = agree / n, chance / (n * n)
    if chance == n * n:
        return Kappa(float("nan"), n, observed, expected, ONE_CLASS_ONLY)
    kappa = (n * agree - chance) / (n * n - chance)
    return Kappa(float(kappa), n, observed, expected, "")


def cohen_kappa(a: Sequence[object], b: Sequence[object]) -> float:
    """Cohen's kappa between two raters over the items both labelled (Cohen 1960).

    Args:
        a: labels of rater A, one per item; ``None`` or NaN where A gave none.
        b: labels of rater B for the same items in the same order.

    Returns:
        kappa in [-1, 1]; 1.0 on perfect agreement with two or more labels used; NaN when there is no shared
        item or both raters used one and the same label throughout (see :func:`kappa_details` for the reason).

    Examples:
        >>> cohen_kappa(["A", "A", "B", "B"], ["A", "B", "B", "B"])  # p_o = 3/4, p_e = (2*1 + 2*3)/16 = 1/2
        0.5
    """
    return kappa_details(a, b).kappa


@dataclass(frozen=True)
class KappaMatrix:
    """Cohen's kappa for every pair of raters (rows x columns), with the counts behind each value.

    Attributes:
        kappa: kappa per pair (NaN when undefined).
        n_items: items both raters labelled (the items weighted by ``weights`` when those were given).
        observed: ``p_o`` per pair.
        reason: ``""``, :data:`NO_SHARED_ITEMS` or :data:`ONE_CLASS_ONLY` per pair.
    """

    kappa: pd.DataFrame
    n_items: pd.DataFrame
    observed: pd.DataFrame
    reason: pd.DataFrame

    def pairs(self, *, upper: bool = True, diagonal: bool = False) -> pd.DataFrame:
        """The matrix as one row per pair: ``rater_a, rater_b, kappa, n_items, observed, reason``.

        Args:
            upper: keep only the pairs above the diagonal (row position < column position), which for a square
                matrix of one rater set is every unordered pair once.
            diagonal: keep the diagonal too (a rater with itself in a square matrix; rater ``i`` of one set
                with rater ``i`` of the other in a cross matrix).
        """
        rows, cols = self.kappa.index, self.kappa.columns
        i, j = np.meshgrid(np.arange(len(rows)), np.arange(len(cols)), indexing="ij")
        keep = np.ones(i.shape, dtype=bool)
        if upper:
            keep = (i < j) | (diagonal & (i == j))
        elif not diagonal:
            keep = i != j
        i, j = i[keep], j[keep]
        return pd.DataFrame(
            {
                "rater_a": np.asarray(rows, dtype=object)[i],
                "rater_b": np.asarray(cols, dtype=object)[j],
                "kappa": self.kappa.to_numpy()[i, j],
                "n_items": self.n_items.to_numpy()[i, j],
                "observed": self.observed.to_numpy()[i, j],
                "reason": self.reason.to_numpy()[i, j],
            }
        )


def _check_labels(labels: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise PersonaLabError(
            f"{what}: missing column(s) {missing}; expected one row per label with columns rater, item, choice"
        )
    df = labels.loc[:, list(LABEL_COLUMNS)]
    df = df[df["choice"].notna()]
    dup = df.duplicated(["rater", "item"], keep="first")
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        row = df.iloc[pos]
        raise PersonaLabError(
            f"{what}: row {df.index[pos]!r} labels item {row['item']!r} a second time for rater {row['rater']!r}; "
            "a rater gives one label per item (drop or merge the duplicate rows)"
        )
    return df


def _onehot(
    df: pd.DataFrame, raters: Sequence[object] | None, items: pd.Index, categories: pd.Index, what: str
) -> tuple[pd.Index, np.ndarray]:
    rater_index = pd.Index(pd.unique(df["rater"]) if raters is None else list(raters))
    if not rater_index.is_unique:
        raise PersonaLabError(f"{what}: the rater list names a rater twice; give each rater once")
    df = df[df["rater"].isin(rater_index)]
    r = rater_index.get_indexer(df["rater"])
    i = items.get_indexer(df["item"])
    c = categories.get_indexer(df["choice"])
    onehot = np.zeros((len(categories), len(rater_index), len(items)), dtype=np.float64)
    onehot[c, r, i] = 1.0
    return rater_index, onehot


_REASONS = np.array(["", NO_SHARED_ITEMS, ONE_CLASS_ONLY], dtype=object)


@dataclass(frozen=True)
class KappaCounts:
    """The counts behind Cohen's kappa for every pair of a row rater and a column rater.

    For the pair (row r, column s) over the items both labelled: ``n`` items, ``agree`` equal labels,
    ``side_a[c]`` the row rater's count of label ``c`` and ``side_b[c]`` the column rater's. Counts add up: the
    counts of several pairs summed are the contingency table of those pairs pooled, which :meth:`symmetric`
    and :meth:`grouped` use.
    """

    rows: pd.Index
    cols: pd.Index
    n: np.ndarray
    agree: np.ndarray
    side_a: np.ndarray
    side_b: np.ndarray

    def matrix(self) -> KappaMatrix:
        """The kappa of every pair, ``(n * agree - chance) / (n**2 - chance)`` with
        ``chance = sum_c side_a[c] * side_b[c]`` (the module docstring's edge cases)."""
        n, agree = self.n, self.agree
        chance = (self.side_a * self.side_b).sum(axis=0)
        total = n * n
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = (n * agree - chance) / (total - chance)
            observed = agree / n
        code = np.where(n == 0, 1, np.where(chance == total, 2, 0))
        kappa = np.where(code == 0, kappa, np.nan)
        observed = np.where(n == 0, np.nan, observed)
        n_out = n.astype(np.int64) if np.all(n == np.round(n)) else n

        def frame(values: np.ndarray) -> pd.DataFrame:
            return pd.DataFrame(values, index=self.rows.copy(), columns=self.cols.copy())

        return KappaMatrix(frame(kappa), frame(n_out), frame(observed), frame(_REASONS[code]))

    def symmetric(self) -> KappaCounts:
        """Pool each pair with its mirror: cell (i, j) counts the items of (row i, column j) and of (row j,
        column i) together, row raters' labels on one side, column raters' on the other.

        For two rater sets indexed alike (e.g. per persona: the people's label and a model's label) this is one
        symmetric kappa per unordered pair of indices, the matrix an upper-triangle heatmap shows; on the
        diagonal it is the plain kappa of (row i, column i).

        Raises:
            PersonaLabError: rows and columns are not the same index in the same order.
        """
        if not self.rows.equals(self.cols):
            raise PersonaLabError(
                "symmetric kappa: the two rater sets must have the same index in the same order"
            )
        return KappaCounts(
            self.rows,
            self.cols,
            self.n + self.n.T,
            self.agree + self.agree.T,
            self.side_a + self.side_a.transpose(0, 2, 1),
            self.side_b + self.side_b.transpose(0, 2, 1),
        )

    def grouped(
        self,
        groups: Mapping[object, object],
        *,
        exclude_self: bool = True,
        identity: Mapping[object, object] | None = None,
    ) -> KappaCounts:
        """Pool the pairs of rater groups (e.g. the people who role-played one persona): cell (g, h) counts every
        ordered pair of a row rater in g and a column rater in h, without a rater paired with itself when
        ``exclude_self``. On the diagonal this is the pooled agreement of the people within a group (with every
        rater labelling every item, Fleiss' kappa).

        Args:
            groups: rater -> group for every row and column rater; the groups, in order of first appearance,
                index the result.
            exclude_self: leave out pairs of a rater with itself (or with the same ``identity``).
            identity: rater -> who it is, when one person appears as several raters; pairs of the same person
                are left out too.
        """

        def indicator(index: pd.Index) -> tuple[pd.Index, np.ndarray]:
            missing = [r for r in index if r not in groups]
            if missing:
                raise PersonaLabError(f"grouped kappa: rater(s) {missing[:5]} have no group")
            labels = pd.Index(pd.unique(pd.Series([groups[r] for r in index], dtype=object)))
            g = np.zeros((len(index), len(labels)))
            g[np.arange(len(index)), labels.get_indexer([groups[r] for r in index])] = 1.0
            return labels, g

        row_labels, gr = indicator(self.rows)
        col_labels, gc = indicator(self.cols)
        keep = np.ones(self.n.shape)
        if exclude_self:
            who_r = np.asarray([identity.get(r, r) if identity else r for r in self.rows], dtype=object)
            who_c = np.asarray([identity.get(c, c) if identity else c for c in self.cols], dtype=object)
            keep = np.where(who_r[:, None] == who_c[None, :], 0.0, 1.0)

        def pool(x: np.ndarray) -> np.ndarray:
            return gr.T @ (x * keep) @ gc

        return KappaCounts(
            row_labels,
            col_labels,
            pool(self.n),
            pool(self.agree),
            np.stack([pool(s) for s in self.side_a]),
            np.stack([pool(s) for s in self.side_b]),
        )


class KappaDesign:
    """Two label sets encoded once as one-hot indicator arrays, for computing kappa counts repeatedly (with item
    weights for the bootstrap).

    Args:
        labels_a: the row raters' labels (``rater, item, choice``).
        labels_b: the column raters' labels; ``None``: the same as ``labels_a`` (a square matrix).
        raters_a: row raters and their order (default: first appearance).
        raters_b: column raters (default: first appearance, or ``raters_a`` when ``labels_b`` is ``None``).
    """

    def __init__(
        self,
        labels_a: pd.DataFrame,
        labels_b: pd.DataFrame | None = None,
        *,
        raters_a: Sequence[object] | None = None,
        raters_b: Sequence[object] | None = None,
    ) -> None:
        a = _check_labels(labels_a, "kappa (row raters)")
        b = a if labels_b is None else _check_labels(labels_b, "kappa (column raters)")
        self.items = pd.Index(pd.unique(pd.concat([a["item"], b["item"]], ignore_index=True)))
        self.categories = pd.Index(pd.unique(pd.concat([a["choice"], b["choice"]], ignore_index=True)))
        self.rows, self.xa = _onehot(a, raters_a, self.items, self.categories, "kappa (row raters)")
        if labels_b is None and raters_b is None:
            self.cols, self.xb = self.rows, self.xa
        else:
            self.cols, self.xb = _onehot(b, raters_b, self.items, self.categories, "kappa (column raters)")

    def counts(self, weights: np.ndarray | None = None) -> KappaCounts:
        """Counts of every (row, column) pair: a few matrix products over the indicator arrays, no loop over
        pairs. ``weights`` gives each item (in ``self.items`` order) a non-negative weight."""
        xa, xb = self.xa, self.xb
        w = np.ones(len(self.items)) if weights is None else np.asarray(weights, dtype=np.float64)
        ma, mb = xa.sum(axis=0), xb.sum(axis=0)  # rated-or-not masks, raters x items
        mbw = mb * w
        n = ma @ mbw.T
        agree = np.zeros_like(n)
        side_a = np.empty((len(self.categories), *n.shape))
        side_b = np.empty_like(side_a)
        for c in range(len(self.categories)):  # a loop over the (few) labels, never over pairs
            xbw = xb[c] * w
            agree += xa[c] @ xbw.T
            side_a[c] = xa[c] @ mbw.T
            side_b[c] = ma @ xbw.T
        return KappaCounts(self.rows, self.cols, n, agree, side_a, side_b)

    def item_weights(self, weights: pd.Series | None) -> np.ndarray | None:
        """``item -> weight`` as an array in ``self.items`` order (missing items weigh 0)."""
        if weights is None:
            return None
        return weights.reindex(self.items).fillna(0.0).to_numpy(dtype=np.float64)


def kappa_matrix(
    labels: pd.DataFrame,
    *,
    raters: Sequence[object] | None = None,
    weights: pd.Series | None = None,
) -> KappaMatrix:
    """Cohen's kappa of every pair of raters over the items both labelled, vectorized.

    With ``X_c`` the raters x items indicator matrix of label ``c`` and ``M = sum_c X_c`` the "rated" mask, the
    shared items are ``M M^T``, the agreements ``sum_c X_c X_c^T`` and the chance products
    ``sum_c (X_c M^T) * (M X_c^T)`` (elementwise): a few matrix products, no loop over pairs. 1,586 raters x 200
    items take well under a second (``benchmarks/bench_kappa.py``). Edge cases as in the module docstring.

    Args:
        labels: one row per label with columns ``rater``, ``item``, ``choice`` (extra columns are ignored);
            rows with a missing choice count as "not rated".
        raters: the raters and their order (default: order of first appearance); raters without labels get
            NaN rows with reason "no shared items".
        weights: item -> weight (non-negative; integer counts for a bootstrap replicate). Items without a
            weight count 0.

    Returns:
        A :class:`KappaMatrix`, square and symmetric, indexed by rater.

    Raises:
        PersonaLabError: a column is missing or a rater labels an item twice.
    """
    design = KappaDesign(labels, raters_a=raters)
    return design.counts(design.item_weights(weights)).matrix()


def kappa_between(
    labels_a: pd.DataFrame,
    labels_b: pd.DataFrame,
    *,
    raters_a: Sequence[object] | None = None,
    raters_b: Sequence[object] | None = None,
    weights: pd.Series | None = None,
    symmetric: bool = False,
) -> KappaMatrix:
    """Cohen's kappa of every rater of one set (rows) with every rater of another (columns), e.g. the people's
    label of each persona against a model's label of each persona (PERSONA Fig. 6). Same arguments and
    conventions as :func:`kappa_matrix`; items are matched by their ``item`` value across the two sets.
    ``symmetric`` pools each pair with its mirror (:meth:`KappaCounts.symmetric`; both sets need the same
    raters in the same order)."""
    design = KappaDesign(labels_a, labels_b, raters_a=raters_a, raters_b=raters_b)
    counts = design.counts(design.item_weights(weights))
    return (counts.symmetric() if symmetric else counts).matrix()


def sklearn_kappa_matrix(
    labels: pd.DataFrame,
    *,
    raters: Sequence[object] | None = None,
    pairs: Sequence[tuple[int, int]] | None = None,
) -> pd.DataFrame:
    """The reference implementation: a Python loop over pairs calling ``sklearn.metrics.cohen_kappa_score`` on
    each pair's shared items (NaN when undefined or without shared items). Slow; for tests and the benchmark.

    Args:
        labels: as for :func:`kappa_matrix`.
        raters: the raters and their order.
        pairs: compute only these (row, column) positions (the benchmark times a sample); default every pair.
    """
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import cohen_kappa_score

    df = _check_labels(labels, "sklearn_kappa_matrix")
    names = pd.Index(pd.unique(df["rater"]) if raters is None else list(raters))
    items = pd.Index(pd.unique(df["item"]))
    df = df[df["rater"].isin(names)]
    dense = np.full((len(names), len(items)), None, dtype=object)
    dense[names.get_indexer(df["rater"]), items.get_indexer(df["item"])] = df["choice"].to_numpy(dtype=object)
    rated = dense != None  # noqa: E711 - elementwise comparison with None
    out = np.full((len(names), len(names)), np.nan)
    todo = pairs if pairs is not None else [(i, j) for i in range(len(names)) for j in range(i, len(names))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        for i, j in todo:
            shared = rated[i] & rated[j]
            if shared.any():
                k = cohen_kappa_score(dense[i, shared].tolist(), dense[j, shared].tolist())
                out[i, j] = out[j, i] = k
    return pd.DataFrame(out, index=names.copy(), columns=names.copy())
