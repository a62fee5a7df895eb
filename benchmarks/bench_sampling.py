"""Benchmark: drawing personas from the embedded census model vs from PUMS microdata.

Run: ``.venv/bin/python benchmarks/bench_sampling.py [--n 100000] [--repeats 3]``. Prints a Markdown table
for the census-model section of benchmarks/RESULTS.md. Times are the best of ``repeats`` runs:

* load: reading the 12-state PUMS files into a persona frame vs reading ``data/census_model.json``;
* sample: drawing ``n`` personas from the loaded source (PWGTP-weighted rows vs ancestral model draws);
* fidelity: the largest per-variable weighted TVD between the draws and the microdata (age and income
  compared on the model's bands).

``--national`` instead measures what raking to the ACS 2018 national margins adds (``census.population =
"national"``): opening the source (raking) and drawing ``n`` personas, states vs national, for the embedded model
and the 12 PUMS states, with the largest TVD of the draws to the national margins.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from persona_lab.census import PumsSource, load_persona_frame, national_comparison, national_tvd, open_source
from persona_lab.census._model import EMBEDDED_MODEL_PATH, load_embedded_model
from persona_lab.census._schema import CENSUS_ATTRIBUTES, OPTIONAL_ATTRIBUTES
from persona_lab.census._stats import total_variation_distance
from persona_lab.census.fit_model import default_pums_files


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def max_tvd(draws: Any, frame: Any, model: Any) -> tuple[float, str]:
    worst = (0.0, "")
    for col in (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES):
        if col == "age":
            a, b = model.age_band(draws[col]), model.age_band(frame[col])
        elif col == "income":
            a, b = model.income_band(draws[col]), model.income_band(frame[col])
        else:
            a, b = draws[col].fillna("None"), frame[col].fillna("None")
        p = a.groupby(a.to_numpy()).size()
        q = frame["weight"].groupby(b.to_numpy()).sum()
        worst = max(worst, (total_variation_distance(p, q), col))
    return worst


def national(n: int, repeats: int) -> None:
    """The time raking adds: open + sample n, population states vs national, model and PUMS."""
    from persona_lab.config import CensusConfig

    print(
        f"n = {n:,} personas; best of {repeats}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    print()
    print(
        "| source | population | open (s) | sample n (s) | max TVD to national margins (item) | ESS after raking |"
    )
    print("|---|---|---:|---:|---|---:|")
    for name, pums in (("embedded model", []), ("12 PUMS states", default_pums_files())):
        for population in ("states", "national"):
            cfg = CensusConfig.model_validate({"pums": pums, "population": population})
            t_open, opened = best_of(repeats, lambda cfg=cfg: open_source(cfg))
            t_sample, draws = best_of(repeats, lambda o=opened: o.source.sample(n, np.random.default_rng(0)))
            tvd = national_tvd(national_comparison(draws))
            ess = f"{opened.raking.ess_after:,.0f}" if opened.raking else ""
            print(
                f"| {name} | {population} | {t_open:.2f} | {t_sample:.2f} | {tvd.max():.4f} ({tvd.idxmax()}) "
                f"| {ess} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--national", action="store_true", help="Measure the time raking to national margins adds."
    )
    args = parser.parse_args()
    if args.national:
        national(args.n, args.repeats)
        return
    files = default_pums_files()

    t_load_pums, frame = best_of(args.repeats, lambda: load_persona_frame(files, 2018))
    t_load_model, model = best_of(args.repeats, load_embedded_model)
    pums = PumsSource(frame, weighting="pwgtp")
    t_pums, pums_draws = best_of(args.repeats, lambda: pums.sample(args.n, np.random.default_rng(0)))
    t_model, model_draws = best_of(args.repeats, lambda: model.sample(args.n, np.random.default_rng(0)))
    t_iid, iid_draws = best_of(args.repeats, lambda: model.sample(args.n, np.random.default_rng(0), "iid"))
    size = EMBEDDED_MODEL_PATH.stat().st_size

    rows = [
        ("PUMS microdata (PWGTP rows)", t_load_pums, t_pums, max_tvd(pums_draws, frame, model)),
        ("embedded model, systematic", t_load_model, t_model, max_tvd(model_draws, frame, model)),
        ("embedded model, iid", t_load_model, t_iid, max_tvd(iid_draws, frame, model)),
    ]
    print(
        f"n = {args.n:,} personas; {len(frame):,} PUMS records of {frame['state'].nunique()} states (2018);"
    )
    print(
        f"model file {size / 1024:.0f} KiB; {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    print()
    print("| source | load (s) | sample n (s) | load + sample (s) | max TVD vs microdata (variable) |")
    print("|---|---:|---:|---:|---|")
    for name, t_load, t_sample, (tvd, col) in rows:
        print(f"| {name} | {t_load:.3f} | {t_sample:.3f} | {t_load + t_sample:.3f} | {tvd:.4f} ({col}) |")
    print()
    print(
        f"time ratio model/PUMS: sampling {t_model / t_pums:.2f}x, "
        f"load + sample {(t_load_model + t_model) / (t_load_pums + t_pums):.3f}x"
    )


if __name__ == "__main__":
    main()
