"""The procedural persona stage: census draws -> consistency rules with resampling -> traits -> text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from persona_lab.census import CENSUS_ATTRIBUTES, META_COLUMNS, OPTIONAL_ATTRIBUTES, CensusSource
from persona_lab.errors import PersonaLabError
from persona_lab.personas._rules import RULES, ConsistencyRule, check_rules
from persona_lab.personas._schema import ATTRIBUTE_KEYS, OPEN_ENDED_KEYS, TEXT_ORDER, Persona
from persona_lab.personas._text import render_texts
from persona_lab.personas._traits import (
    BIG_FIVE_COLUMNS,
    BIG_FIVE_LEVELS,
    BIG_FIVE_TRAITS,
    SEED_COLUMNS,
    PersonaSeeds,
    SeedCounts,
    add_traits,
)

PAPER_N = 1586
"""PERSONA's number of personas."""
PAPER_N_TRAIN = 1000
"""PERSONA's train personas (the other 586 are test)."""


@dataclass(frozen=True)
class GenerationReport:
    """What the procedural stage did: how many census draws it took and why draws were rejected."""

    n: int
    """Personas produced."""
    n_train: int
    """Personas in the train split."""
    seed: int
    """The seed the stage ran with."""
    source: str
    """Description of the census source (e.g. ``"embedded census model"``)."""
    draws: int
    """Census rows drawn in total (accepted + rejected)."""
    rejected: int
    """Draws that broke at least one rule and were resampled."""
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    """Draws breaking each rule (a draw can break several, so these may add up to more than ``rejected``)."""
    rounds: int = 1
    """Sampling rounds (each redraws exactly the rejected count)."""

    @property
    def rejection_rate(self) -> float:
        """Rejected draws / all draws (PERSONA's LLM check: about 8.5 %); ``nan`` with no draws."""
        return self.rejected / self.draws if self.draws else float("nan")

    def rule_rates(self) -> dict[str, float]:
        """Per rule: draws breaking it / all draws."""
        return {
            k: (v / self.draws if self.draws else float("nan")) for k, v in self.rejections_by_rule.items()
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per rule: ``rule``, ``rejected`` (count), ``rate`` (share of all draws)."""
        rates = self.rule_rates()
        return pd.DataFrame(
            {
                "rule": list(self.rejections_by_rule),
                "rejected": list(self.rejections_by_rule.values()),
                "rate": [rates[k] for k in self.rejections_by_rule],
            }
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "n": self.n,
            "n_train": self.n_train,
            "seed": self.seed,
            "source": self.source,
            "draws": self.draws,
            "rejected": self.rejected,
            "rejection_rate": self.rejection_rate,
            "rounds": self.rounds,
            "rejections_by_rule": dict(self.rejections_by_rule),
        }

    def summary(self) -> str:
        """A few human-readable lines: the overall rejection rate, then each rule that rejected a draw."""
        lines = [
            f"{self.n} personas ({self.n_train} train, {self.n - self.n_train} test) from {self.source}, "
            f"seed {self.seed}",
            f"rejection rate: {self.rejection_rate:.2%} ({self.rejected} of {self.draws} census draws rejected "
            f"by the consistency rules, {self.rounds} sampling round(s))",
        ]
        for rule, count in sorted(self.rejections_by_rule.items(), key=lambda kv: -kv[1]):
            if count:
                lines.append(f"  {rule}: {count} ({count / self.draws:.2%})")
        return "\n".join(lines)


def default_n_train(n: int) -> int:
    """Train personas for ``n`` personas at PERSONA's ratio 1,000 / 1,586 (rounded half to even)."""
    return int(round(n * PAPER_N_TRAIN / PAPER_N))


def assign_ids_and_split(frame: pd.DataFrame, n_train: int, rng: np.random.Generator) -> pd.DataFrame:
    """Insert ``persona_id`` (``p00001``, ... in row order) and ``split`` (the first ``n_train`` of a
    permutation drawn from ``rng`` are ``train``, the rest ``test``) as the first two columns."""
    n = len(frame)
    out = frame.copy()
    out.insert(0, "persona_id", [f"p{i:05d}" for i in range(1, n + 1)])
    split = np.full(n, "test", dtype=object)
    split[rng.permutation(n)[:n_train]] = "train"
    out.insert(1, "split", split)
    return out


def _check_draw(batch: pd.DataFrame, expected: int) -> None:
    missing = [c for c in CENSUS_ATTRIBUTES if c not in batch.columns]
    if missing:
        raise PersonaLabError(
            f"census source returned a frame without column(s) {missing}; "
            "it must follow persona_lab.census._schema (CENSUS_ATTRIBUTES)"
        )
    if len(batch) != expected:
        raise PersonaLabError(f"census source returned {len(batch)} rows when asked for {expected}")
    if batch["age"].isna().any():
        raise PersonaLabError("census source returned a row without age; every persona needs an age")


def _draw_consistent(
    source: CensusSource,
    n: int,
    rng: np.random.Generator,
    rules: Sequence[ConsistencyRule],
    max_rounds: int,
) -> tuple[pd.DataFrame, int, int, dict[str, int], int]:
    """Draw until ``n`` rows pass every rule; each round redraws exactly the number still missing."""
    kept: list[pd.DataFrame] = []
    need, draws, rejected, rounds = n, 0, 0, 0
    by_rule = dict.fromkeys((r.name for r in rules), 0)
    while need > 0:
        if rounds == max_rounds:
            raise PersonaLabError(
                f"after {rounds} sampling rounds {need} of {n} personas still break the consistency rules "
                f"({rejected} of {draws} draws rejected); check the census source or pass fewer rules"
            )
        batch = source.sample(need, rng).reset_index(drop=True)
        _check_draw(batch, need)
        violations = check_rules(batch, rules)
        bad = violations.any(axis=1).to_numpy()
        for name, count in violations.sum(axis=0).items():
            by_rule[str(name)] += int(count)
        draws += len(batch)
        rejected += int(bad.sum())
        kept.append(batch.loc[~bad])
        need -= int((~bad).sum())
        rounds += 1
    frame = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
    return frame, draws, rejected, by_rule, rounds


def generate_personas(
    source: CensusSource,
    n: int,
    seed: int = 0,
    *,
    n_train: int | None = None,
    rules: Sequence[ConsistencyRule] = RULES,
    seeds: PersonaSeeds | None = None,
    seed_counts: SeedCounts = SeedCounts(),
    source_name: str | None = None,
    max_rounds: int = 50,
) -> tuple[pd.DataFrame, GenerationReport]:
    """Draw ``n`` procedural personas (PERSONA App. A, steps 1-2 and the consistency filter of step 4).

    Steps: draw census rows from ``source`` (``CensusSource.sample``); reject rows that break a
    :data:`~persona_lab.personas.RULES` rule and redraw that many, until ``n`` rows pass; add Big Five levels,
    religion and the quirk/core-value/mannerism seeds (:func:`~persona_lab.personas.add_traits`); number the
    personas ``p00001``, ``p00002``, ... in draw order; put the first ``n_train`` of a seeded permutation in the
    ``train`` split and the rest in ``test``; render PERSONA's text. The open-ended attributes are present as
    empty (``None``) columns for the LLM enrichment stage and are absent from ``text``.

    Randomness: ``np.random.SeedSequence(seed)`` is spawned into three independent streams (census draws,
    traits, split), so the result is identical on rerun with the same source and seed, and changing the rules
    does not change the traits' stream.

    Args:
        source: the census source (PUMS microdata or the embedded census model).
        n: number of personas (PERSONA: 1,586).
        seed: the seed.
        n_train: personas in the train split; default :func:`default_n_train` (1,000 of 1,586).
        rules: the consistency rules to apply (an empty tuple disables them).
        seeds: seed lists; default the curated lists shipped with persona_lab.
        seed_counts: how many seeds of each kind each persona gets.
        source_name: description of the source for the report.
        max_rounds: give up (PersonaLabError) after this many sampling rounds.

    Returns:
        The personas table (``persona_id``, ``split``, one column per PERSONA attribute key, the Big Five level
        columns, the seed columns, the census meta columns, ``text``) and the :class:`GenerationReport`.
    """
    if n < 1:
        raise PersonaLabError(f"number of personas must be at least 1, got {n}")
    n_train = default_n_train(n) if n_train is None else n_train
    if not 0 <= n_train <= n:
        raise PersonaLabError(f"n_train must be between 0 and n={n}, got {n_train}")
    census_ss, traits_ss, split_ss = np.random.SeedSequence(seed).spawn(3)
    census, draws, rejected, by_rule, rounds = _draw_consistent(
        source, n, np.random.default_rng(census_ss), rules, max_rounds
    )
    frame = add_traits(census, np.random.default_rng(traits_ss), seeds=seeds, counts=seed_counts)
    frame["age"] = pd.to_numeric(frame["age"]).astype("int64")
    frame["income"] = pd.to_numeric(frame["income"]).astype("float64")
    for key in OPTIONAL_ATTRIBUTES:
        if key not in frame.columns:
            frame[key] = None
        else:
            frame[key] = frame[key].astype(object).where(frame[key].notna(), None)
    for key in OPEN_ENDED_KEYS:
        frame[key] = pd.Series([None] * n, dtype=object)
    frame = assign_ids_and_split(frame, n_train, np.random.default_rng(split_ss))
    attribute_cols = [k for k in TEXT_ORDER if k in frame.columns]
    extra = [*BIG_FIVE_COLUMNS, *SEED_COLUMNS.values()]
    meta = [c for c in META_COLUMNS if c in frame.columns]
    rest = [c for c in frame.columns if c not in {"persona_id", "split", *attribute_cols, *extra, *meta}]
    frame = frame[["persona_id", "split", *attribute_cols, *extra, *rest, *meta]]
    frame["text"] = render_texts(frame)
    report = GenerationReport(
        n=n,
        n_train=n_train,
        seed=seed,
        source=source_name or type(source).__name__,
        draws=draws,
        rejected=rejected,
        rejections_by_rule=by_rule,
        rounds=rounds,
    )
    return frame, report


def _big_five_levels_of(line: str | None) -> list[str | None]:
    """The five level labels of a standard ``big five scores`` line, else five ``None``."""
    if line is None:
        return [None] * len(BIG_FIVE_TRAITS)
    parts = dict(p.split(": ", 1) for p in line.split(", ") if ": " in p)
    levels = [parts.get(t) for t in BIG_FIVE_TRAITS]
    return [v if v in BIG_FIVE_LEVELS else None for v in levels]


def table_from_personas(
    personas: Sequence[Persona], seed: int = 0, *, n_train: int | None = None, source: str = "personas"
) -> pd.DataFrame:
    """A personas table from parsed PERSONA personas (e.g. the released ones, read with ``read_personas``).

    Columns: ``persona_id`` (``p00001``... in input order), ``split`` (first ``n_train`` of a permutation
    seeded by ``seed``; default :func:`default_n_train`), one column per PERSONA key (its text, ``None`` when
    absent) with ``age`` as an int and ``income`` as a number (NaN for free text such as ``"No income"``),
    the Big Five level columns when ``big five scores`` has the standard form, and ``text`` (the persona
    re-serialized, byte-identical to its source for released personas).

    Raises:
        PersonaLabError: no personas, or a persona without an integer age (names ``source`` and the persona).
    """
    if not personas:
        raise PersonaLabError(f"{source}: no personas to import")
    n = len(personas)
    n_train = default_n_train(n) if n_train is None else n_train
    if not 0 <= n_train <= n:
        raise PersonaLabError(f"n_train must be between 0 and n={n}, got {n_train}")
    rows = [{key: p.get(key) for key in ATTRIBUTE_KEYS} for p in personas]
    frame = pd.DataFrame(rows, columns=list(TEXT_ORDER), dtype=object)
    ages = pd.to_numeric(frame["age"], errors="coerce")
    bad = ages.isna() | (ages != ages.round())
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PersonaLabError(
            f"{source}: persona {i + 1}: age {rows[i]['age']!r} is not a whole number; every persona needs an age"
        )
    frame["age"] = ages.astype("int64")
    frame["income"] = pd.to_numeric(frame["income"], errors="coerce").astype("float64")
    levels = [_big_five_levels_of(p.big_five_scores) for p in personas]
    for j, col in enumerate(BIG_FIVE_COLUMNS):
        frame[col] = pd.Series([lv[j] for lv in levels], dtype=object)
    frame["text"] = pd.Series([p.to_text() for p in personas], dtype=object)
    return assign_ids_and_split(
        frame, n_train, np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    )
