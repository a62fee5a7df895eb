"""Train / held-out split of the kept prompts, stratified by topic (PERSONA: 3,000 / 868)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError


def scaled_split_sizes(n_kept: int, n_train: int, n_heldout: int) -> tuple[int, int]:
    """Split sizes for ``n_kept`` prompts given the target sizes.

    With at least ``n_train + n_heldout`` prompts the targets are used as they are (the surplus is left
    ``unused``). With fewer, both are scaled by the same factor: ``train = floor(n_kept * n_train /
    (n_train + n_heldout))`` and held-out gets the rest, e.g. 60 kept -> 46 / 14 for PERSONA's 3,000 / 868
    (60 * 3000 / 3868 = 46.5).
    """
    if n_train < 0 or n_heldout < 0:
        raise PersonaLabError(f"split sizes must be >= 0, got n_train={n_train}, n_heldout={n_heldout}")
    total = n_train + n_heldout
    if n_kept >= total:
        return n_train, n_heldout
    if total == 0:
        return 0, 0
    train = math.floor(n_kept * n_train / total)
    return train, n_kept - train


def largest_remainder(sizes: np.ndarray, total: int, capacity: np.ndarray | None = None) -> np.ndarray:
    """Apportion ``total`` units over groups in proportion to ``sizes`` (Hamilton's method).

    Each group gets ``floor(total * size / sum(sizes))``; the units left go one each to the groups with the
    largest fractional parts (ties to the lower index), never beyond a group's ``capacity``.
    """
    sizes = np.asarray(sizes, dtype=float)
    cap = np.asarray(capacity if capacity is not None else sizes, dtype=int)
    if total > cap.sum():
        raise PersonaLabError(f"cannot place {total} prompts in groups holding {int(cap.sum())}")
    if total == 0 or sizes.sum() == 0:
        return np.zeros(len(sizes), dtype=int)
    quota = total * sizes / sizes.sum()
    alloc = np.minimum(np.floor(quota).astype(int), cap)
    frac = quota - np.floor(quota)
    order = sorted(range(len(sizes)), key=lambda g: (-frac[g], g))
    left = total - int(alloc.sum())
    while left > 0:
        progressed = False
        for g in order:
            if left == 0:
                break
            if alloc[g] < cap[g]:
                alloc[g] += 1
                left -= 1
                progressed = True
        if not progressed:  # pragma: no cover - excluded by the capacity check above
            break
    return alloc


def split_prompts(
    df: pd.DataFrame, n_train: int, n_heldout: int, seed: int, *, by: str = "topic"
) -> pd.DataFrame:
    """Assign the kept prompts to ``train`` and ``heldout``, stratified by topic, seeded.

    Sizes come from :func:`scaled_split_sizes`. Per topic, the train count is the topic's share of the
    train total apportioned by :func:`largest_remainder`; the held-out count likewise over what is left;
    so every topic appears in both splits in (almost exactly) its overall proportion, PERSONA's "cover the
    topic distribution uniformly". Within a topic the prompts are shuffled with
    ``numpy.random.default_rng(seed)`` (in ``prompt_id`` order first, so the result does not depend on row
    order). Kept prompts beyond ``n_train + n_heldout`` get ``unused``; prompts not kept get None.

    Args:
        df: prompts with a boolean ``kept`` column and, for stratification, the column ``by`` (missing or
            all-null: one stratum).
        n_train: target train size (PERSONA: 3,000).
        n_heldout: target held-out size (PERSONA: 868).
        seed: random seed.
        by: the stratum column.

    Returns:
        A copy with the column ``split`` in {``train``, ``heldout``, ``unused``, None}.
    """
    if "kept" not in df.columns:
        raise PersonaLabError("prompt table has no 'kept' column; run the filters before splitting")
    out = df.copy()
    split = np.full(len(out), None, dtype=object)
    kept_pos = np.flatnonzero(out["kept"].astype(bool).to_numpy())
    n = len(kept_pos)
    train_total, held_total = scaled_split_sizes(n, n_train, n_heldout)
    if n == 0:
        out["split"] = pd.Series(split, index=out.index, dtype=object)
        return out
    if by in out.columns:
        raw = out[by].to_numpy(dtype=object)[kept_pos]
        strata = np.array(["__none__" if pd.isna(v) else v for v in raw], dtype=object)
    else:
        strata = np.zeros(n, dtype=object)
    keys = sorted(set(strata.tolist()), key=str)
    sizes = np.array([int((strata == k).sum()) for k in keys])
    train_n = largest_remainder(sizes, train_total)
    held_n = largest_remainder(sizes, held_total, capacity=sizes - train_n)
    ids = out["prompt_id"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    for k, n_tr, n_ho in zip(keys, train_n, held_n, strict=True):
        members = kept_pos[strata == k]
        members = members[np.argsort(ids[members], kind="stable")]
        perm = members[rng.permutation(len(members))]
        split[perm[:n_tr]] = "train"
        split[perm[n_tr : n_tr + n_ho]] = "heldout"
        split[perm[n_tr + n_ho :]] = "unused"
    out["split"] = pd.Series(split, index=out.index, dtype=object)
    return out
