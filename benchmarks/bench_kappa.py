"""Time the vectorized rater x rater Cohen's kappa matrix against a per-pair sklearn loop.

Usage: .venv/bin/python benchmarks/bench_kappa.py [--raters 1586] [--items 200] [--missing 0.3] [--sample 20000]
       [--full]

Labels are random (two choices, a share ``--missing`` of (rater, item) cells unlabelled), one rater per PERSONA
persona (1,586) over 200 items. ``persona_lab.agreement.kappa_matrix`` computes every pair with matrix products;
the reference loops over pairs and calls ``sklearn.metrics.cohen_kappa_score`` on each pair's shared items
(``persona_lab.agreement.sklearn_kappa_matrix``). The loop over all 1,257,405 pairs takes many minutes, so by
default it is timed on ``--sample`` random pairs and scaled to all pairs (printed as such); ``--full`` runs every
pair. The two results are compared on every pair the loop computed (maximum absolute difference).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from persona_lab.agreement import kappa_matrix, sklearn_kappa_matrix


def random_labels(n_raters: int, n_items: int, missing: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rated = rng.random((n_raters, n_items)) >= missing
    r, i = np.nonzero(rated)
    choice = np.where(rng.random(len(r)) < 0.7, "revision", "original")
    return pd.DataFrame(
        {"rater": [f"p{x:04d}" for x in r], "item": [f"q{x:03d}" for x in i], "choice": choice}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=1586)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--missing", type=float, default=0.3)
    parser.add_argument("--sample", type=int, default=20000, help="pairs the sklearn loop is timed on")
    parser.add_argument("--full", action="store_true", help="run the sklearn loop on every pair")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of kappa_matrix")
    args = parser.parse_args()

    labels = random_labels(args.raters, args.items, args.missing)
    raters = list(pd.unique(labels["rater"]))
    n_pairs = len(raters) * (len(raters) - 1) // 2
    print(
        f"{len(raters):,} raters x {args.items} items, {len(labels):,} labels ({args.missing:.0%} missing), {n_pairs:,} pairs"
    )

    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ours = kappa_matrix(labels, raters=raters)
        times.append(time.perf_counter() - t0)
    vectorized = min(times)
    print(
        f"kappa_matrix (vectorized): {vectorized:.3f} s (best of {args.repeat}: {', '.join(f'{t:.3f}' for t in times)})"
    )

    rng = np.random.default_rng(1)
    if args.full:
        pairs = [(i, j) for i in range(len(raters)) for j in range(i + 1, len(raters))]
    else:
        flat = rng.choice(n_pairs, size=min(args.sample, n_pairs), replace=False)
        upper = np.triu_indices(len(raters), k=1)
        pairs = list(zip(upper[0][flat].tolist(), upper[1][flat].tolist(), strict=True))
    t0 = time.perf_counter()
    ref = sklearn_kappa_matrix(labels, raters=raters, pairs=pairs)
    timed = time.perf_counter() - t0
    loop = timed * n_pairs / len(pairs)
    how = "all pairs" if args.full else f"{len(pairs):,} pairs, scaled to {n_pairs:,}"
    print(
        f"sklearn cohen_kappa_score loop: {loop:.1f} s ({how}; {timed:.1f} s measured, {timed / len(pairs) * 1e6:.0f} us per pair)"
    )
    print(f"speed-up: {loop / vectorized:,.0f}x")

    rows, cols = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    a = ours.kappa.to_numpy()[rows, cols]
    b = ref.to_numpy()[rows, cols]
    same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
    diff = float(np.nanmax(np.abs(a - b))) if np.isfinite(a).any() else 0.0
    print(
        f"agreement on the {len(pairs):,} compared pairs: max |difference| = {diff:.2e}, same NaNs: {same_nan}"
    )


if __name__ == "__main__":
    main()
