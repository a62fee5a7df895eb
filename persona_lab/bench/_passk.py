"""pass@k: the unbiased estimator and the empirical any-of-the-first-k rate (PERSONA Fig. 12).

PERSONA (Castricato et al. 2024, Sec. 5, Fig. 12) samples 16 answers per (persona, question) item and counts an
item as passed at k when any of its first k answers needs no revision. That empirical rate depends on the order
of the samples; the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models Trained on Code",
Sec. 2.1) uses all n samples of an item: with c of them correct,

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i),

the probability that k answers drawn without replacement from the n include a correct one. The product form has
no huge binomials, so it is exact to float precision for n in the thousands. Both are averaged over items;
the empirical rate is an unbiased estimate of the same quantity when the samples are exchangeable, so the two
curves agree up to sampling noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator 1 - C(n-c, k) / C(n, k) of one item (Chen et al. 2021).

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (no binomial coefficient is formed), exact to float
    precision for n up to many thousands. When fewer than k answers are wrong (``n - c < k``) every draw of k
    holds a correct one and the estimate is exactly 1.0.

    Args:
        n: answers sampled for the item (n >= 1).
        c: how many of them passed (0 <= c <= n).
        k: answers drawn (1 <= k <= n).

    Raises:
        PersonaLabError: n, c or k out of range (the message names which).

    Examples:
        >>> pass_at_k(4, 1, 2)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        0.5
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise PersonaLabError(f"pass_at_k: {name} = {value!r}; expected a whole number")
    if n < 1:
        raise PersonaLabError(f"pass_at_k: n = {n} answers; expected at least 1")
    if not 0 <= c <= n:
        raise PersonaLabError(f"pass_at_k: c = {c} correct of n = {n}; expected 0 <= c <= n")
    if not 1 <= k <= n:
        raise PersonaLabError(f"pass_at_k: k = {k} with n = {n} answers per item; expected 1 <= k <= n")
    if n - c < k:
        return 1.0
    i = np.arange(n - c + 1, n + 1, dtype=float)
    return float(1.0 - np.prod(1.0 - k / i))


def pass_at_k_exact(n: int, c: int, k: int) -> float:
    """The same estimator from exact integer binomials (``math.comb``): a reference for tests, slow for big n."""
    if not (1 <= k <= n and 0 <= c <= n):
        raise PersonaLabError(f"pass_at_k_exact: need 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def empirical_pass_at_k(passed: Sequence[bool], k: int) -> bool:
    """Whether any of the first ``k`` answers of one item passed (the official PERSONA Bench rate).

    Args:
        passed: the item's answers in sampling order (``sample_index`` 0, 1, ...), True for a pass.
        k: how many of the first answers count (1 <= k <= len(passed)).
    """
    if not 1 <= k <= len(passed):
        raise PersonaLabError(
            f"empirical_pass_at_k: k = {k} with {len(passed)} answers; expected 1 <= k <= n"
        )
    return bool(any(bool(p) for p in passed[:k]))


def pass_at_k_curves(
    outcomes: pd.DataFrame,
    ks: Sequence[int],
    *,
    by: Sequence[str] = ("model", "mode"),
    item: Sequence[str] = ("persona_id", "prompt_id"),
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """pass@k for every k in ``ks`` by both estimators, per group, with bootstrap standard errors over items.

    Args:
        outcomes: one row per sampled answer: the ``by`` and ``item`` columns, ``sample`` (the sample index, which
            orders the answers of an item) and ``passed`` (bool; a failed answer or verdict is False: it is
            never counted as a pass).
        ks: the k values (each at most the samples per item of every item).
        by: columns that identify a curve (one per model and mode).
        item: columns that identify an item.
        n_boot: bootstrap resamples of the items.
        seed: seed of the bootstrap.
        confidence: coverage of the percentile intervals.

    Returns:
        One row per group, estimator (``unbiased`` / ``empirical``) and k: the ``by`` columns, ``estimator``,
        ``k``, ``value`` (mean over items), ``se``, ``lo``, ``hi``, ``items`` and ``n`` (answers per item, the
        smallest over items).

    Raises:
        PersonaLabError: a k larger than some item's number of answers, or missing columns.
    """
    from persona_lab.bench._stats import bootstrap_columns

    needed = {*by, *item, "sample", "passed"}
    missing = needed - set(outcomes.columns)
    if missing:
        raise PersonaLabError(f"pass@k outcomes lack column(s) {sorted(missing)}")
    rows = []
    for key, group in outcomes.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        per_item = []
        for _, answers in group.sort_values("sample").groupby(list(item), sort=False):
            per_item.append([bool(p) for p in answers["passed"]])
        n_min = min(len(p) for p in per_item)
        too_big = [k for k in ks if k > n_min]
        if too_big:
            raise PersonaLabError(
                f"pass@k: k = {too_big[0]} is larger than the {n_min} answers of some item of "
                f"{dict(zip(by, key, strict=True))}; lower bench.max_k or raise bench.pass_at_k_samples"
            )
        unbiased = np.array([[pass_at_k(len(p), sum(p), k) for k in ks] for p in per_item], dtype=float)
        empirical = np.array([[float(empirical_pass_at_k(p, k)) for k in ks] for p in per_item], dtype=float)
        for name, matrix in (("unbiased", unbiased), ("empirical", empirical)):
            stats = bootstrap_columns(matrix, n_boot=n_boot, seed=seed, confidence=confidence)
            for j, k in enumerate(ks):
                rows.append(
                    {
                        **dict(zip(by, key, strict=True)),
                        "estimator": name,
                        "k": int(k),
                        "value": stats["mean"][j],
                        "se": stats["se"][j],
                        "lo": stats["lo"][j],
                        "hi": stats["hi"][j],
                        "items": len(per_item),
                        "n": n_min,
                    }
                )
    columns = [*by, "estimator", "k", "value", "se", "lo", "hi", "items", "n"]
    return pd.DataFrame(rows, columns=columns)
