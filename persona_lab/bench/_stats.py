"""Accuracy with bootstrap standard errors and intervals (PERSONA Fig. 10: accuracy with bootstrap std).

Accuracy is the share of scored answers that need no revision. An answer the model under test could not give
(a degenerate or unparseable answer, a refusal) scores 0: it is the model's failure and never a pass. An item
whose verdict is missing for reasons outside the model (the critic failed, or the call to the model failed for
lack of quota or a network error after the runner's retries) is left unscored and reported, not guessed.

The standard error is the standard deviation of the mean over ``n_boot`` bootstrap resamples of the items (the
same convention as ``inspect_ai``'s ``bootstrap_std``, which the official PERSONA Bench reports); the interval is
the percentile interval of those resamples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError


def bootstrap_columns(
    values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, np.ndarray]:
    """Column means of ``values`` (items x statistics) with bootstrap SE and percentile intervals over rows.

    Every column is resampled with the same row draws, so e.g. the points of a pass@k curve share resamples.
    With no rows every statistic is NaN; with one row the SE is 0 and the interval a point.

    Returns:
        ``{"mean", "se", "lo", "hi"}``, each an array with one entry per column.
    """
    matrix = np.asarray(values, dtype=float)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    n, m = matrix.shape
    if n == 0:
        nan = np.full(m, np.nan)
        return {"mean": nan, "se": nan.copy(), "lo": nan.copy(), "hi": nan.copy()}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = matrix[idx].mean(axis=1)  # n_boot x m
    alpha = (1.0 - confidence) / 2.0
    return {
        "mean": matrix.mean(axis=0),
        "se": boots.std(axis=0, ddof=1) if n_boot > 1 else np.zeros(m),
        "lo": np.quantile(boots, alpha, axis=0),
        "hi": np.quantile(boots, 1.0 - alpha, axis=0),
    }


def bootstrap_mean(
    values: Sequence[float] | np.ndarray, *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, float]:
    """Mean of ``values`` (NaN entries dropped) with its bootstrap SE and percentile interval.

    Returns:
        ``{"mean", "se", "lo", "hi", "n"}`` (NaN statistics and ``n`` 0 when no value is left).
    """
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    stats = bootstrap_columns(arr, n_boot=n_boot, seed=seed, confidence=confidence)
    return {key: float(v[0]) for key, v in stats.items()} | {"n": int(arr.size)}


def accuracy_table(
    rows: pd.DataFrame,
    by: Sequence[str] = ("model", "mode"),
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    order: dict[str, Sequence[Any]] | None = None,
) -> pd.DataFrame:
    """Accuracy (share of scored answers needing no revision) per group, with bootstrap SE and interval.

    Args:
        rows: bench rows with the ``by`` columns, ``score`` (1.0 pass, 0.0 fail, NaN unscored) and
            ``failure`` (``""`` or why the answer or verdict failed).
        by: grouping columns.
        n_boot, seed, confidence: the bootstrap (see :func:`bootstrap_columns`).
        order: optional ``{column: values}`` order of the groups (e.g. the modes in configuration order).

    Returns:
        The ``by`` columns, ``accuracy``, ``se``, ``lo``, ``hi``, ``n`` (scored items), ``passed``,
        ``failed`` (answers that failed, scored 0) and ``unscored`` (items without a verdict).
    """
    missing = {*by, "score"} - set(rows.columns)
    if missing:
        raise PersonaLabError(f"bench rows lack column(s) {sorted(missing)}")
    out = []
    failure = rows["failure"].fillna("") if "failure" in rows.columns else pd.Series("", index=rows.index)
    for key, group in rows.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        score = group["score"].astype(float)
        stats = bootstrap_mean(score.to_numpy(), n_boot=n_boot, seed=seed, confidence=confidence)
        scored = score.notna()
        out.append(
            {
                **dict(zip(by, key, strict=True)),
                "accuracy": stats["mean"],
                "se": stats["se"],
                "lo": stats["lo"],
                "hi": stats["hi"],
                "n": stats["n"],
                "passed": int((score == 1.0).sum()),
                "failed": int((scored & (failure[group.index] != "")).sum()),
                "unscored": int((~scored).sum()),
            }
        )
    table = pd.DataFrame(
        out, columns=[*by, "accuracy", "se", "lo", "hi", "n", "passed", "failed", "unscored"]
    )
    if order:
        for col in reversed(list(order)):
            if col in table.columns:
                rank = {v: i for i, v in enumerate(order[col])}
                table = table.iloc[
                    np.argsort([rank.get(v, len(rank)) for v in table[col]], kind="stable")
                ].reset_index(drop=True)
    return table
