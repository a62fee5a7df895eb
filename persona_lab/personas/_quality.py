"""Quality checks on the open-ended persona attributes, for the output of any backend.

Pure functions over a personas DataFrame whose columns are named by PERSONA's attribute keys (the
persona frame contract in ``persona_lab.census._schema`` plus the open-ended keys below). They never
call a model: the same checks run on the released PERSONA personas, on a local 135M model's output
and on GPT-4-class output, so the three can be compared side by side.

Checks (each one a column of the per-persona flags table):

* **present**: every open-ended attribute has a value. Absent, empty and the placeholder ``"None"``
  count as missing (the released data has ``detailed job description: None`` for young children).
* **short**: at most :data:`MAX_FIELD_WORDS` whitespace-separated words. Measured on the 100 released
  personas in ``personas_sample100.json`` (see ``tests/test_personas_quality.py``), the longest value
  of any open-ended attribute has 24 words (a detailed job description); medians are 7 (detailed job
  description), 6 (defining quirks), 6 (mannerisms), 8 (personal time), 3 (lifestyle), 1 (ideology),
  1 (political views). PERSONA calls them "short phrases"; 25 words keeps every released value.
* **no census copy**: no open-ended value equals one of the persona's census values after
  normalisation (case, surrounding punctuation, PUMS's ``"LGL-"``-style category code prefix), e.g. a
  job description that only repeats the occupation category. ``"Not applicable"`` is exempt.
* **lean coherence**: ideology and political views are mapped to a coarse lean with the small lexicon
  below; a persona whose two leans are ``left`` and ``right`` is flagged.
* **not degenerate**: no open-ended value repeats (or nearly repeats) another one of the same persona
  (``persona_lab.llm.degenerate_fields``: the same boilerplate sentence in every field). Values of one or
  two words may repeat ("Not applicable" in a child's ideology and political views).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from persona_lab.census import CENSUS_ATTRIBUTES, OPTIONAL_ATTRIBUTES
from persona_lab.llm import degenerate_fields
from persona_lab.personas._schema import OPEN_ENDED_KEYS
from persona_lab.personas._text import NOT_APPLICABLE, is_absent_or_placeholder
from persona_lab.text import word_count

MAX_FIELD_WORDS = 25
"""A value is "short" with at most this many words (released PERSONA data: max 24, medians 1-8)."""

Lean = Literal["left", "right", "center", "mixed", "unformed", "other", "missing"]
"""Coarse political lean of an ideology or political-views phrase (see :func:`classify_lean`)."""

LEANS: tuple[Lean, ...] = ("left", "right", "center", "mixed", "unformed", "other", "missing")

# The lexicon is the project's own, written for U.S. political vocabulary. Terms match at a word start
# and as prefixes ("democrat" matches "Democrats", "environmental" matches "environmentalism").
# Tiers are tried in order; within a tier, terms of both sides give "mixed".
LEFT_TERMS: tuple[str, ...] = (
    "liberal",
    "progressive",
    "democrat",
    "left-leaning",
    "leans left",
    "leans towards the left",
    "left of center",
    "left-wing",
    "socialist",
    "green party",
)
"""Explicit left-of-center labels (tier 1)."""
RIGHT_TERMS: tuple[str, ...] = (
    "conservative",
    "republican",
    "right-leaning",
    "leans right",
    "leans towards the right",
    "right of center",
    "right-wing",
    "libertarian",
    "maga",
)
"""Explicit right-of-center labels (tier 1). Libertarian counts as right: most U.S. self-described
libertarians vote Republican (Pew Research Center, "In search of libertarians", 2014)."""
CENTER_TERMS: tuple[str, ...] = (
    "moderate",
    "centrist",
    "independent",
    "non-partisan",
    "nonpartisan",
    "middle of the road",
    "swing voter",
)
"""Centrist labels (tier 2)."""
UNFORMED_TERMS: tuple[str, ...] = (
    "not applicable",
    "too young",
    "not formed",
    "still forming",
    "undecided",
    "apolitical",
    "not political",
    "does not engage",
    "no political",
    "not interested in politics",
)
"""No position yet or none at all (tier 3)."""
SOFT_LEFT_TERMS: tuple[str, ...] = (
    "social justice",
    "environmental",
    "climate",
    "equality",
    "equal opportunit",
    "workers' rights",
    "labor rights",
)
"""Themes coded left in U.S. politics, used only when no label matched (tier 4)."""
SOFT_RIGHT_TERMS: tuple[str, ...] = (
    "traditional",
    "personal responsibility",
    "limited government",
    "small government",
    "free market",
    "gun rights",
)
"""Themes coded right in U.S. politics, used only when no label matched (tier 4)."""


def _pattern(terms: Iterable[str]) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(t) for t in terms) + ")", re.IGNORECASE)


_LEFT, _RIGHT = _pattern(LEFT_TERMS), _pattern(RIGHT_TERMS)
_CENTER, _UNFORMED = _pattern(CENTER_TERMS), _pattern(UNFORMED_TERMS)
_SOFT_LEFT, _SOFT_RIGHT = _pattern(SOFT_LEFT_TERMS), _pattern(SOFT_RIGHT_TERMS)


def classify_lean(text: Any) -> Lean:
    """Map an ideology or political-views phrase to a coarse lean.

    Tiers, first match wins: (1) explicit labels (``Liberal``, ``Democrat``, ``Conservative``,
    ``Republican``, ...): left or right, ``mixed`` if both sides occur; (2) centrist labels
    (``Moderate``, ``Independent``, ...): ``center``; (3) no position (``Not applicable``,
    ``Too young to vote``, ``Still forming``, ...): ``unformed``; (4) themes coded left or right
    (``social justice``, ``traditional values``, ...); otherwise ``other``. Missing values give
    ``missing``. Negation is not parsed ("not a Republican" counts as right): phrases in PERSONA's
    style rarely use it.

    Examples: ``"Identifies as a moderate Democrat"`` -> left (tier 1 outranks tier 2);
    ``"Moderate, with a focus on social justice"`` -> center; ``"Too young to vote, but interested in
    social justice issues"`` -> unformed; ``"Pragmatic"`` -> other.
    """
    if is_absent_or_placeholder(text):
        return "missing"
    s = str(text)
    side = _side(_LEFT, _RIGHT, s)
    if side is not None:
        return side
    if _CENTER.search(s):
        return "center"
    if _UNFORMED.search(s):
        return "unformed"
    return _side(_SOFT_LEFT, _SOFT_RIGHT, s) or "other"


def _side(left: re.Pattern[str], right: re.Pattern[str], s: str) -> Lean | None:
    has_left, has_right = bool(left.search(s)), bool(right.search(s))
    if has_left and has_right:
        return "mixed"
    return "left" if has_left else "right" if has_right else None


def leans_conflict(ideology_lean: Lean, political_lean: Lean) -> bool:
    """True when one of the two leans is ``left`` and the other ``right``."""
    return {ideology_lean, political_lean} == {"left", "right"}


_CODE_PREFIX = re.compile(r"^[A-Z]{2,4}-(?=\S)")
_EDGE_PUNCT = re.compile(r"^[\s\"'.,;:!?()-]+|[\s\"'.,;:!?()-]+$")


def _normalise(value: Any) -> str:
    s = _CODE_PREFIX.sub("", str(value).strip())
    return re.sub(r"\s+", " ", _EDGE_PUNCT.sub("", s)).casefold()


def copied_census_attribute(value: Any, census: Mapping[str, Any]) -> str | None:
    """The census attribute whose value ``value`` repeats verbatim, or ``None``.

    Both sides are normalised: case-folded, surrounding punctuation and whitespace removed, and PUMS's
    category code prefix dropped (``"LGL-Paralegals And Legal Assistants"`` -> ``"paralegals and legal
    assistants"``). Missing values and ``"Not applicable"`` never count as copies.
    """
    if is_absent_or_placeholder(value):
        return None
    v = _normalise(value)
    if v == NOT_APPLICABLE.casefold():
        return None
    for key, census_value in census.items():
        if is_absent_or_placeholder(census_value) or isinstance(census_value, (int, float)):
            continue
        if _normalise(census_value) == v:
            return key
    return None


def _census_keys(columns: Iterable[str]) -> list[str]:
    cols = set(columns)
    return [k for k in (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES, "religion") if k in cols]


def _persona_ids(personas: pd.DataFrame) -> pd.Series:
    if "persona_id" in personas.columns:
        return personas["persona_id"].astype(str).reset_index(drop=True)
    return pd.Series([str(i) for i in personas.index], dtype=object)


def quality_flags(personas: pd.DataFrame, *, max_words: int = MAX_FIELD_WORDS) -> pd.DataFrame:
    """Per-persona quality flags for the open-ended attributes.

    Args:
        personas: one row per persona, columns named by PERSONA keys; open-ended columns that are
            absent count as missing for every persona.
        max_words: the "short" limit (default :data:`MAX_FIELD_WORDS`).

    Returns:
        One row per persona, in input order: ``persona_id``; ``missing_fields``, ``long_fields``,
        ``copied_fields`` (attribute names joined by ``"; "``, empty when none; a copy is written
        ``"job description=occupation category"``); ``degenerate_fields`` (attributes whose value repeats
        another attribute of the persona, ``persona_lab.llm.degenerate_fields``); ``ideology_lean``,
        ``political_lean`` (:func:`classify_lean`); ``lean_conflict`` (bool); ``flagged`` (any check failed).
    """
    census_keys = _census_keys(personas.columns)
    rows: list[dict[str, Any]] = []
    records = personas.reset_index(drop=True).to_dict("records")
    for pid, rec in zip(_persona_ids(personas), records, strict=True):
        census = {k: rec.get(k) for k in census_keys}
        missing, long, copied = [], [], []
        present: dict[str, str] = {}
        for field in OPEN_ENDED_KEYS:
            value = rec.get(field)
            if is_absent_or_placeholder(value):
                missing.append(field)
                continue
            present[field] = str(value)
            if word_count(str(value)) > max_words:
                long.append(field)
            source = copied_census_attribute(value, census)
            if source is not None:
                copied.append(f"{field}={source}")
        degenerate = list(degenerate_fields(present))
        ideology, political = classify_lean(rec.get("ideology")), classify_lean(rec.get("political views"))
        conflict = leans_conflict(ideology, political)
        rows.append(
            {
                "persona_id": pid,
                "missing_fields": "; ".join(missing),
                "long_fields": "; ".join(long),
                "copied_fields": "; ".join(copied),
                "degenerate_fields": "; ".join(degenerate),
                "ideology_lean": ideology,
                "political_lean": political,
                "lean_conflict": conflict,
                "flagged": bool(missing or long or copied or degenerate or conflict),
            }
        )
    columns = [
        "persona_id",
        "missing_fields",
        "long_fields",
        "copied_fields",
        "degenerate_fields",
        "ideology_lean",
        "political_lean",
        "lean_conflict",
        "flagged",
    ]
    return pd.DataFrame(rows, columns=columns)


def field_summary(personas: pd.DataFrame, *, max_words: int = MAX_FIELD_WORDS) -> pd.DataFrame:
    """Per open-ended attribute: how many personas have it, are too long, copy a census value or repeat
    another attribute.

    Returns:
        One row per attribute in :data:`OPEN_ENDED_KEYS` with ``field``, ``n``, ``n_present``,
        ``n_missing``, ``n_long``, ``n_copied``, ``n_degenerate``, ``median_words`` and ``max_words`` (word statistics
        over present values; NaN and 0 when none is present).
    """
    flags = quality_flags(personas, max_words=max_words)
    out = []
    for field in OPEN_ENDED_KEYS:
        values = personas[field] if field in personas.columns else pd.Series([None] * len(personas))
        words = [word_count(str(v)) for v in values if not is_absent_or_placeholder(v)]
        out.append(
            {
                "field": field,
                "n": len(personas),
                "n_present": len(words),
                "n_missing": len(personas) - len(words),
                "n_long": int(flags["long_fields"].map(lambda s, f=field: f in s.split("; ")).sum()),
                "n_copied": int(
                    flags["copied_fields"]
                    .map(lambda s, f=field: any(c.split("=")[0] == f for c in s.split("; ") if c))
                    .sum()
                ),
                "n_degenerate": int(
                    flags["degenerate_fields"].map(lambda s, f=field: f in s.split("; ")).sum()
                ),
                "median_words": float(pd.Series(words).median()) if words else math.nan,
                "max_words": max(words, default=0),
            }
        )
    return pd.DataFrame(out)


def lean_distribution(personas: pd.DataFrame, *, source: str = "") -> pd.DataFrame:
    """Distribution of leans of ``ideology`` and ``political views``.

    Returns:
        Tidy rows ``source``, ``field`` (``ideology`` or ``political views``), ``lean`` (every value of
        :data:`LEANS`, zero counts included), ``count`` and ``share`` (of all personas, so shares of a
        field sum to 1; NaN for an empty frame).
    """
    rows = []
    n = len(personas)
    for field in ("ideology", "political views"):
        values = personas[field] if field in personas.columns else pd.Series([None] * n)
        counts = pd.Series([classify_lean(v) for v in values], dtype=object).value_counts()
        for lean in LEANS:
            c = int(counts.get(lean, 0))
            rows.append(
                {
                    "source": source,
                    "field": field,
                    "lean": lean,
                    "count": c,
                    "share": c / n if n else math.nan,
                }
            )
    return pd.DataFrame(rows)


def left_right_ratio(personas: pd.DataFrame, field: str) -> float:
    """Personas leaning left divided by personas leaning right on ``field`` (inf if none lean right,
    NaN if neither side occurs). The released PERSONA sample skews liberal (see the tests)."""
    leans = [classify_lean(v) for v in personas.get(field, pd.Series(dtype=object))]
    left, right = leans.count("left"), leans.count("right")
    if right == 0:
        return math.inf if left else math.nan
    return left / right


@dataclass(frozen=True)
class QualityReport:
    """The quality checks of one personas table.

    Attributes:
        flags: per-persona flags (:func:`quality_flags`).
        fields: per-attribute summary (:func:`field_summary`).
        leans: lean distribution of ideology and political views (:func:`lean_distribution`).
    """

    flags: pd.DataFrame
    fields: pd.DataFrame
    leans: pd.DataFrame

    @property
    def n(self) -> int:
        """Personas checked."""
        return len(self.flags)

    @property
    def flagged_share(self) -> float:
        """Share of personas with at least one flag (NaN when empty)."""
        return float(self.flags["flagged"].mean()) if self.n else math.nan

    @property
    def n_lean_conflicts(self) -> int:
        """Personas whose ideology and political views lean to opposite sides."""
        return int(self.flags["lean_conflict"].sum())

    def summary(self) -> dict[str, float | int]:
        """Headline numbers: personas, flagged share, missing/long/copied/degenerate values, lean conflicts and
        the left:right ratios of ideology and political views."""

        def ratio(field: str) -> float:
            d = self.leans[self.leans["field"] == field].set_index("lean")["count"]
            left, right = int(d.get("left", 0)), int(d.get("right", 0))
            return left / right if right else (math.inf if left else math.nan)

        return {
            "personas": self.n,
            "flagged_share": self.flagged_share,
            "missing_values": int(self.fields["n_missing"].sum()),
            "long_values": int(self.fields["n_long"].sum()),
            "copied_values": int(self.fields["n_copied"].sum()),
            "degenerate_values": int(self.fields["n_degenerate"].sum()),
            "lean_conflicts": self.n_lean_conflicts,
            "ideology_left_right_ratio": ratio("ideology"),
            "political_views_left_right_ratio": ratio("political views"),
        }


def check_quality(
    personas: pd.DataFrame, *, source: str = "", max_words: int = MAX_FIELD_WORDS
) -> QualityReport:
    """Run every quality check on a personas table (any backend's output, or the released data)."""
    return QualityReport(
        flags=quality_flags(personas, max_words=max_words),
        fields=field_summary(personas, max_words=max_words),
        leans=lean_distribution(personas, source=source),
    )
