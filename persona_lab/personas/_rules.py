"""Deterministic consistency rules, applied to census draws before any LLM check.

PERSONA rejects self-inconsistent profiles with an LLM check (about 8.5 % rejected), yet the release still holds
31 of 185 minors with positive income. These rules catch the impossible combinations deterministically, before
the LLM sees a profile. Each rule encodes an ACS universe or a logical constraint of the census variables (ACS
2018/2019 PUMS data dictionaries), so real PUMS records essentially never break one: on the 146,727 persons of
the 12-state 2018 PUMS in the development data, the only hit is one 17-year-old with income 110,000
(``six_figure_income_minor``, which PERSONA's own example calls inconsistent). Draws from a fitted census model
(which only keeps pairwise dependencies) can break them; those draws are rejected and resampled.

Rules read decoded labels (PERSONA wording or the dictionary's). Matching is case-insensitive and a value that is
``None``, empty, ``"None"``, ``"Not applicable"`` or starts with ``"N/A"`` or ``"Too young"`` counts as not
applicable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError


@dataclass(frozen=True)
class ConsistencyRule:
    """A named constraint; ``violates(frame)`` is ``True`` for the rows that break it."""

    name: str
    description: str
    columns: tuple[str, ...]
    violates: Callable[[pd.DataFrame], np.ndarray]


def _text(frame: pd.DataFrame, col: str) -> pd.Series:
    s = frame[col]
    return s.where(s.notna(), "").astype(str).str.strip().str.lower()


def _na(text: pd.Series) -> pd.Series:
    return text.isin(["", "none", "not applicable"]) | text.str.startswith(("n/a", "too young"))


def _present(frame: pd.DataFrame, col: str) -> pd.Series:
    """Optional attribute present (applies to the person)."""
    return ~_na(_text(frame, col))


def _age(frame: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(frame["age"], errors="coerce").to_numpy(dtype=float)


def _income(frame: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(frame["income"], errors="coerce").to_numpy(dtype=float)


_EVER_MARRIED = ("married", "widowed", "divorced", "separated")


def _married_under_15(f: pd.DataFrame) -> np.ndarray:
    ms = _text(f, "marital status")
    return (_age(f) < 15) & ms.str.startswith(_EVER_MARRIED).to_numpy()


def _served(f: pd.DataFrame) -> pd.Series:
    v = _text(f, "veteran status")
    return v.str.contains("active duty|reserves|national guard", regex=True) | (v == "veteran")


_AT_WORK = re.compile(
    r"\b(?:employed|at work|with a job|working|armed forces|part[- ]time(?! student)|full[- ]time(?! student))\b"
)
"""Labels of a person with work: ACS ESR 1/2 ("Civilian employed, at work", "... with a job but not at work"),
ESR 4/5 ("Armed forces, ..."), and the release's "Employed", "Self-employed", "Part-time", "Full-time"."""
_WITHOUT_WORK = re.compile(
    r"\b(?:not|never|un)[- ]?(?:employed|working)\b|\bunemployed\b|\bnot in (?:the )?labor force\b"
)
"""Labels that deny work although they contain a work word: "Not employed", "Unemployed", "Not working"."""


def _employed(f: pd.DataFrame) -> pd.Series:
    """Employment status says the person works. Whole words only: "Not employed" and "Unemployed" contain
    "employed" but are not work, and the release labels some under-16s "Part-time"."""
    e = _text(f, "employment status")
    return e.str.contains(_AT_WORK) & ~e.str.contains(_WITHOUT_WORK)


def _in_armed_forces(f: pd.DataFrame) -> pd.Series:
    return _text(f, "employment status").str.contains("armed forces")


_GRADE = re.compile(r"^grade (\d{1,2})$")

EDUCATION_MIN_AGE: dict[str, int] = {
    "no schooling completed": 3,
    "nursery school, preschool": 3,
    "pre-school": 3,
    "kindergarten": 3,
    "12th grade - no diploma": 14,
    "regular high school diploma": 14,
    "ged or alternative credential": 15,
    "some college, but less than 1 year": 14,
    "1 or more years of college credit, no degree": 15,
    "associate's degree": 15,
    "bachelor's degree": 18,
}
"""Youngest plausible age per education label (lower case) below a graduate degree; ``Grade g``: ``g + 2``.

SCHL's universe starts at age 3. Every other threshold is one year below the youngest holder of that level
among the 146,727 persons of the 12-state 2018 PUMS (12th grade 15, diploma 15, GED 16, some college 15,
1+ years of college 16, associate's 16, bachelor's 19; Grade g: g + 3 or older).
"""

GRADUATE_MIN_AGE: dict[str, int] = {
    "master's degree": 19,
    "professional degree beyond a bachelor's degree": 20,
    "doctorate degree": 22,
}
"""Youngest plausible age per graduate degree: one year below the youngest holder in the same data
(master's 20, professional 21, doctorate 23)."""


def _min_age(labels: pd.Series, table: dict[str, int], grades: bool) -> np.ndarray:
    out = labels.map(table).astype(float)
    if grades:
        g = pd.to_numeric(labels.str.extract(_GRADE, expand=False), errors="coerce")
        out = out.fillna(g + 2)
    return out.to_numpy(dtype=float)


def _education_ahead(f: pd.DataFrame) -> np.ndarray:
    labels = _text(f, "education")
    min_age = _min_age(labels, EDUCATION_MIN_AGE, grades=True)
    with np.errstate(invalid="ignore"):
        ahead = _age(f) < min_age
    any_schooling_under_3 = (
        (_age(f) < 3) & ~_na(labels).to_numpy() & ~labels.isin(GRADUATE_MIN_AGE).to_numpy()
    )
    return ahead | any_schooling_under_3


def _graduate_too_young(f: pd.DataFrame) -> np.ndarray:
    min_age = _min_age(_text(f, "education"), GRADUATE_MIN_AGE, grades=False)
    with np.errstate(invalid="ignore"):
        return _age(f) < min_age


_US_STATE = re.compile(r"/[A-Z]{2}$")


def _citizenship_birthplace(f: pd.DataFrame) -> np.ndarray:
    cit = _text(f, "citizenship")
    pob = f["place of birth"].where(f["place of birth"].notna(), "").astype(str).str.strip()
    known = pob != ""
    in_state = pob.str.contains(_US_STATE)
    us_born = cit.str.startswith(("born in the u.s", "born in the united states"))
    foreign_status = cit.str.contains(
        "naturaliz|not a citizen|not a u.s. citizen|born abroad|born in puerto rico", regex=True
    )
    return (known & ((us_born & ~in_state) | (foreign_status & in_state))).to_numpy()


RULES: tuple[ConsistencyRule, ...] = (
    ConsistencyRule(
        "income_under_15",
        "nonzero income under age 15 (ACS: PINCP is not asked below 15)",
        ("age", "income"),
        lambda f: (_age(f) < 15) & ~np.isnan(_income(f)) & (np.nan_to_num(_income(f)) != 0),
    ),
    ConsistencyRule(
        "six_figure_income_minor",
        "income of $100,000 or more under age 18",
        ("age", "income"),
        lambda f: (_age(f) < 18) & (np.nan_to_num(_income(f)) >= 100_000),
    ),
    ConsistencyRule(
        "married_under_15",
        "married, widowed, divorced or separated under age 15 (ACS: MAR is 'Never married or under 15')",
        ("age", "marital status"),
        _married_under_15,
    ),
    ConsistencyRule(
        "veteran_under_17",
        "military service under age 17 (ACS: MIL is not applicable below 17)",
        ("age", "veteran status"),
        lambda f: (_age(f) < 17) & _served(f).to_numpy(),
    ),
    ConsistencyRule(
        "employed_under_16",
        "employed or in the armed forces under age 16 (ACS: ESR is not applicable below 16)",
        ("age", "employment status"),
        lambda f: (_age(f) < 16) & _employed(f).to_numpy(),
    ),
    ConsistencyRule(
        "labor_force_status_under_16",
        "unemployed or 'not in labor force' under age 16 (ACS: ESR is not applicable below 16)",
        ("age", "employment status"),
        lambda f: (
            (_age(f) < 16) & _text(f, "employment status").str.contains("unemployed|labor force").to_numpy()
        ),
    ),
    ConsistencyRule(
        "class_of_worker_under_16",
        "a class of worker under age 16 (ACS: COW is not applicable below 16)",
        ("age", "class of worker"),
        lambda f: (_age(f) < 16) & ~_na(_text(f, "class of worker")).to_numpy(),
    ),
    ConsistencyRule(
        "education_ahead_of_age",
        "schooling level (up to a bachelor's degree) too advanced for the age (EDUCATION_MIN_AGE)",
        ("age", "education"),
        _education_ahead,
    ),
    ConsistencyRule(
        "graduate_degree_too_young",
        "master's, professional or doctorate degree below the youngest plausible age (GRADUATE_MIN_AGE)",
        ("age", "education"),
        _graduate_too_young,
    ),
    ConsistencyRule(
        "fertility_male",
        "a fertility answer for a man (ACS: FER is asked of women 15 to 50)",
        ("sex", "fertility"),
        lambda f: (_text(f, "sex") == "male").to_numpy() & _present(f, "fertility").to_numpy(),
    ),
    ConsistencyRule(
        "fertility_outside_15_50",
        "a fertility answer outside ages 15 to 50 (ACS: FER universe)",
        ("age", "fertility"),
        lambda f: ((_age(f) < 15) | (_age(f) > 50)) & _present(f, "fertility").to_numpy(),
    ),
    ConsistencyRule(
        "cognitive_difficulty_under_5",
        "a cognitive-difficulty answer under age 5 (ACS: DREM universe is 5+)",
        ("age", "cognitive difficulty"),
        lambda f: (_age(f) < 5) & _present(f, "cognitive difficulty").to_numpy(),
    ),
    ConsistencyRule(
        "english_ability_under_5",
        "an English-ability answer under age 5 (ACS: ENG universe is 5+)",
        ("age", "ability to speak english"),
        lambda f: (_age(f) < 5) & _present(f, "ability to speak english").to_numpy(),
    ),
    ConsistencyRule(
        "citizenship_birthplace_mismatch",
        "born in the U.S. but a foreign birthplace, or foreign-born status with a U.S. state as birthplace",
        ("citizenship", "place of birth"),
        _citizenship_birthplace,
    ),
    ConsistencyRule(
        "active_duty_not_in_armed_forces",
        "'Now on active duty' without an armed-forces employment status (ACS: MIL 1 implies ESR 4 or 5)",
        ("veteran status", "employment status"),
        lambda f: (
            (_text(f, "veteran status") == "now on active duty").to_numpy() & ~_in_armed_forces(f).to_numpy()
        ),
    ),
)
"""The rules applied by :func:`persona_lab.personas.generate_personas`, in reporting order."""


def check_rules(frame: pd.DataFrame, rules: Sequence[ConsistencyRule] = RULES) -> pd.DataFrame:
    """Evaluate every rule on every row.

    Returns:
        A boolean frame with one column per rule name (``True`` = the row breaks the rule), aligned with
        ``frame``'s index.

    Raises:
        PersonaLabError: a column a rule needs is missing.
    """
    out: dict[str, np.ndarray] = {}
    for rule in rules:
        missing = [c for c in rule.columns if c not in frame.columns]
        if missing:
            raise PersonaLabError(
                f"consistency rule {rule.name!r} needs column(s) {missing}, missing from the persona frame; "
                "the frame must follow persona_lab.census._schema"
            )
        if len(frame) == 0:
            out[rule.name] = np.zeros(0, dtype=bool)
            continue
        out[rule.name] = np.asarray(rule.violates(frame), dtype=bool)
    return pd.DataFrame(out, index=frame.index)
