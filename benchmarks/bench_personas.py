"""Time the procedural persona stage for 100,000 personas: consistency rules, traits, PERSONA text.

Usage: .venv/bin/python benchmarks/bench_personas.py [--n 100000] [--source pums|model]

Census rows are drawn once up front (``pums``: the 12-state 2018 PUMS in ../shared/data, weighted by PWGTP;
``model``: the embedded census model); the stage timed is what ``generate_personas`` adds on top of the draws:
the rules on every draw, traits (Big Five, religion, seeds), ids and split, and the text of every persona.
The end-to-end ``generate_personas`` time (draws included) is printed too.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from persona_lab.census._schema import CensusSource
from persona_lab.paths import shared_data_dir
from persona_lab.personas import add_traits, check_rules, generate_personas, render_texts


def _source(kind: str) -> tuple[CensusSource, str]:
    if kind == "model":
        from persona_lab.census import load_embedded_model

        return load_embedded_model(), "embedded census model"
    from persona_lab.census import PumsSource, load_persona_frame

    pums = shared_data_dir() / "pums"
    files = sorted(pums.glob("psam_p*.csv")) + sorted((pums / "zips").glob("csv_p*.zip"))
    frame = load_persona_frame(files, 2018)
    return PumsSource(frame, weighting="pwgtp"), f"12-state 2018 PUMS ({len(frame):,} persons, PWGTP)"


def _timed(label: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t0
    print(f"  {label:<34} {dt:7.3f} s")
    return out, dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--source", choices=("pums", "model"), default="pums")
    args = parser.parse_args()
    source, name = _source(args.source)
    print(f"{args.n:,} personas from the {name}")
    draws, _ = _timed("census draws", source.sample, args.n, np.random.default_rng(0))
    violations, t_rules = _timed("consistency rules (15)", check_rules, draws)
    traits, t_traits = _timed(
        "traits (Big Five, religion, seeds)", add_traits, draws, np.random.default_rng(1)
    )
    texts, t_text = _timed("PERSONA text", render_texts, traits)
    stage = t_rules + t_traits + t_text
    print(f"  {'procedural stage':<34} {stage:7.3f} s = {args.n / stage:,.0f} personas/s")
    (personas, report), t_all = _timed("generate_personas end to end", generate_personas, source, args.n, 0)
    print(f"  {'end to end':<34} {args.n / t_all:,.0f} personas/s")
    print(f"  rejected {report.rejected} of {report.draws} draws ({report.rejection_rate:.3%})")
    assert isinstance(texts, pd.Series) and len(texts) == args.n and not violations.empty
    print(f"  mean text length {personas['text'].str.len().mean():.0f} characters")


if __name__ == "__main__":
    main()
