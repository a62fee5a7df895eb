"""Procedural traits: Big Five levels, religion, and the seeds for quirks, core values and mannerisms.

PERSONA (Castricato et al. 2024, Sec. 3.1, App. A) fills the attributes the census lacks procedurally: Big Five
scores "from BFI-2 probabilities", religion from published US shares, and quirks, core values and mannerisms
seeded from a hand-curated list (not published; ours is in ``data/persona_seeds.json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError

BIG_FIVE_TRAITS: tuple[str, ...] = (
    "Openness",
    "Conscientiousness",
    "Extraversion",
    "Agreeableness",
    "Neuroticism",
)
"""The five traits, in the order PERSONA prints them."""

BIG_FIVE_COLUMNS: tuple[str, ...] = tuple(t.lower() for t in BIG_FIVE_TRAITS)
"""Personas-table columns holding one trait level each."""

BIG_FIVE_LEVELS: tuple[str, ...] = ("Extremely Low", "Low", "Average", "High", "Extremely High")
"""Trait levels, from lowest to highest."""

BIG_FIVE_CUTS: tuple[float, ...] = (-1.0, -0.5, 0.5, 1.0)
"""Cut points on the standard-normal trait score between consecutive levels (intervals closed on the left)."""


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


BIG_FIVE_PROBABILITIES: tuple[float, ...] = tuple(
    _phi(hi) - _phi(lo)
    for lo, hi in zip((-math.inf, *BIG_FIVE_CUTS), (*BIG_FIVE_CUTS, math.inf), strict=True)
)
"""P(level) under the binned standard normal: 0.1587, 0.1499, 0.3829, 0.1499, 0.1587."""


def big_five_levels(z: np.ndarray) -> np.ndarray:
    """Bin standard-normal trait scores into level indices 0..4 (index into :data:`BIG_FIVE_LEVELS`).

    ``z < -1`` is Extremely Low, ``-1 <= z < -0.5`` Low, ``-0.5 <= z < 0.5`` Average, ``0.5 <= z < 1`` High,
    ``z >= 1`` Extremely High.
    """
    return np.searchsorted(np.asarray(BIG_FIVE_CUTS), np.asarray(z, dtype=float), side="right")


def sample_big_five(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw Big Five levels for ``n`` personas.

    Convention (inferred from the released personas, which PERSONA, Castricato et al. 2024, App. A, describes
    as drawn "from BFI-2 probabilities"): each trait is an independent standard normal score binned at +-0.5
    and +-1 SD, giving Extremely Low 15.9 %, Low 15.0 %, Average 38.3 %, High 15.0 %, Extremely High 15.9 %;
    traits are uncorrelated. The draw is one ``rng.standard_normal((n, 5))`` matrix, trait order as
    :data:`BIG_FIVE_TRAITS`.

    Returns:
        A frame with the columns :data:`BIG_FIVE_COLUMNS` (level labels) and ``big five scores`` (PERSONA's
        one-line text: ``"Openness: Low, Conscientiousness: Average, ..."``).
    """
    idx = big_five_levels(rng.standard_normal((n, len(BIG_FIVE_TRAITS))))
    levels = np.asarray(BIG_FIVE_LEVELS, dtype=object)
    out = pd.DataFrame({col: levels[idx[:, j]] for j, col in enumerate(BIG_FIVE_COLUMNS)}, dtype=object)
    # each profile is one of 5**5 = 3125 lines: render them once and index (same text as big_five_text)
    code = idx @ (len(BIG_FIVE_LEVELS) ** np.arange(len(BIG_FIVE_TRAITS) - 1, -1, -1))
    out["big five scores"] = _all_big_five_lines()[code]
    return out


@cache
def _all_big_five_lines() -> np.ndarray:
    """All 3125 ``big five scores`` lines, indexed by the base-5 number of the five level indices."""
    grid = np.indices((len(BIG_FIVE_LEVELS),) * len(BIG_FIVE_TRAITS)).reshape(len(BIG_FIVE_TRAITS), -1).T
    levels = np.asarray(BIG_FIVE_LEVELS, dtype=object)
    frame = pd.DataFrame({col: levels[grid[:, j]] for j, col in enumerate(BIG_FIVE_COLUMNS)}, dtype=object)
    return big_five_text(frame).to_numpy(dtype=object)


def big_five_line(levels: Sequence[object]) -> str:
    """PERSONA's ``big five scores`` text from the five levels in :data:`BIG_FIVE_TRAITS` order:
    ``"Openness: High, Conscientiousness: Average, Extraversion: Low, Agreeableness: High, Neuroticism: Low"``.
    """
    if len(levels) != len(BIG_FIVE_TRAITS):
        raise PersonaLabError(
            f"expected {len(BIG_FIVE_TRAITS)} Big Five levels, got {len(levels)}: {levels!r}"
        )
    return ", ".join(f"{trait}: {level}" for trait, level in zip(BIG_FIVE_TRAITS, levels, strict=True))


def big_five_text(frame: pd.DataFrame) -> pd.Series:
    """PERSONA's ``big five scores`` line (:func:`big_five_line`) of every row, from the five level columns
    :data:`BIG_FIVE_COLUMNS`."""
    levels = frame[list(BIG_FIVE_COLUMNS)].astype(str).itertuples(index=False, name=None)
    return pd.Series(
        [big_five_line(row) for row in levels], index=frame.index, dtype=object, name="big five scores"
    )


@dataclass(frozen=True)
class ReligionShare:
    """One published religious group, its share of US adults (percent) and the persona label it maps to."""

    group: str
    percent: float
    label: str | None
    """Persona wording (as in PERSONA's released personas), or ``None`` for a group that is left out."""


RELIGION_SOURCE = (
    "Pew Research Center, 2014 U.S. Religious Landscape Study (35,071 adults), published in "
    '"America\'s Changing Religious Landscape", May 12, 2015: religious composition of U.S. adults, 2014 column'
)
"""Citation for :data:`RELIGION_SHARES`."""

RELIGION_SHARES: tuple[ReligionShare, ...] = (
    ReligionShare("Evangelical Protestant", 25.4, "Protestant"),
    ReligionShare("Mainline Protestant", 14.7, "Protestant"),
    ReligionShare("Historically Black Protestant", 6.5, "Protestant"),
    ReligionShare("Catholic", 20.8, "Catholic"),
    ReligionShare("Mormon", 1.6, "Other Christian"),
    ReligionShare("Orthodox Christian", 0.5, "Other Christian"),
    ReligionShare("Jehovah's Witness", 0.8, "Other Christian"),
    ReligionShare("Other Christian", 0.4, "Other Christian"),
    ReligionShare("Jewish", 1.9, "Jewish"),
    ReligionShare("Muslim", 0.9, "Muslim"),
    ReligionShare("Buddhist", 0.7, "Buddhist"),
    ReligionShare("Hindu", 0.7, "Hindu"),
    ReligionShare("Other world religions", 0.3, "Other Non-Christian Religion"),
    ReligionShare("Other faiths", 1.5, "Other Non-Christian Religion"),
    ReligionShare("Atheist", 3.1, "Religiously Unaffiliated"),
    ReligionShare("Agnostic", 4.0, "Religiously Unaffiliated"),
    ReligionShare("Nothing in particular", 15.8, "Religiously Unaffiliated"),
    ReligionShare("Don't know/refused", 0.6, None),
)
"""Pew RLS 2014 shares of US adults (:data:`RELIGION_SOURCE`), at the finest level the summary table gives.

Labels follow the released PERSONA personas ("Protestant", "Catholic", "Other Christian", "Jewish",
"Other Non-Christian Religion", "Religiously Unaffiliated"); Muslim, Buddhist and Hindu keep their own names
(the release has e.g. "Buddhist"). Atheists and agnostics are "Religiously Unaffiliated", as in Pew's grouping
and in the release, where that label covers 23 of 100 personas (Pew: 22.8 %). "Don't know/refused" is dropped
and the rest renormalized.
"""


def religion_distribution() -> pd.Series:
    """Persona religion label -> probability (sums to 1), aggregated from :data:`RELIGION_SHARES`."""
    shares: dict[str, float] = {}
    for row in RELIGION_SHARES:
        if row.label is not None:
            shares[row.label] = shares.get(row.label, 0.0) + row.percent
    s = pd.Series(shares, name="probability")
    return s / s.sum()


def sample_religion(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` religion labels independently from :func:`religion_distribution` (one uniform per persona)."""
    dist = religion_distribution()
    cum = np.cumsum(dist.to_numpy())
    cum[-1] = 1.0
    idx = np.searchsorted(cum, rng.random(n), side="right")
    return np.asarray(dist.index, dtype=object)[idx]


@dataclass(frozen=True)
class PersonaSeeds:
    """The curated seed lists the procedural stage samples from."""

    quirks: tuple[str, ...]
    core_values: tuple[str, ...]
    mannerisms: tuple[str, ...]


@dataclass(frozen=True)
class SeedCounts:
    """How many seeds of each kind a persona gets (sampled without replacement)."""

    quirks: int = 2
    core_values: int = 3
    mannerisms: int = 2


SEED_COLUMNS: dict[str, str] = {
    "quirks": "seed_quirks",
    "core_values": "seed_core_values",
    "mannerisms": "seed_mannerisms",
}
"""Seed kind -> personas-table column (a list of strings per persona)."""


@cache
def load_seeds() -> PersonaSeeds:
    """The seed lists shipped with persona_lab (``persona_lab/personas/data/persona_seeds.json``)."""
    ref = resources.files("persona_lab.personas").joinpath("data/persona_seeds.json")
    try:
        data = json.loads(ref.read_text(encoding="utf-8"))
        return PersonaSeeds(**{kind: tuple(data[kind]) for kind in SEED_COLUMNS})
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise PersonaLabError(
            f"{ref}: cannot read the persona seed lists ({exc}); reinstall persona_lab or restore the file"
        ) from exc


def sample_seeds(pool: tuple[str, ...], n: int, k: int, rng: np.random.Generator) -> list[list[str]]:
    """For each of ``n`` personas, ``k`` distinct entries of ``pool`` in random order.

    Each row is the first ``k`` positions of an independent uniform random permutation of the pool (argsort of
    ``rng.random((n, len(pool)))``), so every ordered ``k``-subset is equally likely.
    """
    if k < 0:
        raise PersonaLabError(f"asked for {k} seeds per persona; the number of seeds must be >= 0")
    if k > len(pool):
        raise PersonaLabError(
            f"asked for {k} seeds per persona but the seed list has only {len(pool)} entries"
        )
    if k == 0 or n == 0:
        return [[] for _ in range(n)]
    keys = rng.random((n, len(pool)))
    # the k smallest keys per row (argpartition), then ordered by key: equal to argsort(keys)[:, :k]
    smallest = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < len(pool) else np.tile(np.arange(k), (n, 1))
    order = np.take_along_axis(
        smallest, np.argsort(np.take_along_axis(keys, smallest, axis=1), axis=1), axis=1
    )
    arr = np.asarray(pool, dtype=object)[order]
    return arr.tolist()


def add_traits(
    frame: pd.DataFrame,
    rng: np.random.Generator,
    *,
    seeds: PersonaSeeds | None = None,
    counts: SeedCounts = SeedCounts(),
) -> pd.DataFrame:
    """Return ``frame`` with procedural traits added (a new frame; the input is not modified).

    Adds the five Big Five level columns and ``big five scores`` (:func:`sample_big_five`), ``religion``
    (:func:`sample_religion`) and the seed columns ``seed_quirks``, ``seed_core_values``, ``seed_mannerisms``
    (:func:`sample_seeds`). Draw order from ``rng``: Big Five, religion, quirks, core values, mannerisms.
    """
    seeds = seeds or load_seeds()
    n = len(frame)
    out = frame.reset_index(drop=True).copy()
    traits = sample_big_five(n, rng)
    for col in traits.columns:
        out[col] = traits[col].to_numpy()
    out["religion"] = sample_religion(n, rng)
    for kind, col in SEED_COLUMNS.items():
        out[col] = pd.Series(sample_seeds(getattr(seeds, kind), n, getattr(counts, kind), rng), dtype=object)
    return out
