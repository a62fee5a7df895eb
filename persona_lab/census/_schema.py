"""The persona frame: the contract between the census loaders, the embedded census model and personas.

A persona frame is a DataFrame with one row per person and these columns:

* ``CENSUS_ATTRIBUTES``: named exactly as PERSONA's attribute keys, values in PERSONA's wording
  (decoded labels, e.g. ``"White alone"``, ``"Born in the United States"``). ``age`` is an int,
  ``income`` a number (PINCP, dollars, may be negative). Every other value is a ``str``.
* ``OPTIONAL_ATTRIBUTES``: the five census attributes PERSONA prints only when present: a ``str`` or
  ``None`` (not applicable to this person, e.g. fertility for men), never ``NaN`` strings.
* ``weight``: the person weight PWGTP (float); ``serialno``: household id; ``state``: state abbreviation.

These tuples are the one written list of PERSONA's census keys (Castricato et al. 2024, App. A; the names and
canonical order of ``persona-bench``'s ``persona_keys``): the personas stage builds its 33-key list from them
through the package face (``from persona_lab.census import CENSUS_ATTRIBUTES, OPTIONAL_ATTRIBUTES``), and the
census stage depends on no other stage.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

CENSUS_ATTRIBUTES: tuple[str, ...] = (
    "age",
    "sex",
    "race",
    "ancestry",
    "household language",
    "education",
    "employment status",
    "class of worker",
    "industry category",
    "occupation category",
    "income",
    "marital status",
    "household type",
    "family presence and age",
    "place of birth",
    "citizenship",
    "veteran status",
    "disability",
    "health insurance",
)
"""Always-present census attributes, in PERSONA's key order."""

OPTIONAL_ATTRIBUTES: tuple[str, ...] = (
    "cognitive difficulty",
    "ability to speak english",
    "vision difficulty",
    "fertility",
    "hearing difficulty",
)
"""Census attributes that appear in a persona only when applicable, in PERSONA's key order."""

META_COLUMNS: tuple[str, ...] = ("weight", "serialno", "state")


class CensusSource(Protocol):
    """Anything personas can be drawn from: PUMS microdata or the embedded census model."""

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``n`` persons as a persona frame (``weight`` may be all 1.0 for model draws)."""
        ...
