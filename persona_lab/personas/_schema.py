"""The persona: PERSONA's 33 attributes, their canonical order and the order the released text prints them.

PERSONA (Castricato et al. 2024, arXiv 2407.17387, App. A) describes a persona by 33 attributes. The key names
and canonical order below are those of the official ``persona-bench`` package (``tooling/prompts.py``,
``persona_keys``). The five optional census attributes are printed only when present and, in the released
personas, right after ``health insurance`` (not at the end, where the canonical list has them), in the order
fertility, hearing, vision, cognitive difficulty, ability to speak English: every one of the 100 released
personas we checked follows ``TEXT_ORDER``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from persona_lab.census import CENSUS_ATTRIBUTES, OPTIONAL_ATTRIBUTES

OPEN_ENDED_KEYS: tuple[str, ...] = (
    "detailed job description",
    "defining quirks",
    "mannerisms",
    "personal time",
    "lifestyle",
    "ideology",
    "political views",
)
"""Attributes an LLM writes in the enrichment stage; empty (absent) after the procedural stage."""

PROCEDURAL_KEYS: tuple[str, ...] = ("big five scores", "religion")
"""Attributes drawn procedurally, not from the census."""

_JOB = CENSUS_ATTRIBUTES.index("occupation category") + 1
ATTRIBUTE_KEYS: tuple[str, ...] = (
    *CENSUS_ATTRIBUTES[:_JOB],
    OPEN_ENDED_KEYS[0],
    *CENSUS_ATTRIBUTES[_JOB:],
    PROCEDURAL_KEYS[0],
    *OPEN_ENDED_KEYS[1:],
    PROCEDURAL_KEYS[1],
    *OPTIONAL_ATTRIBUTES,
)
"""PERSONA's 33 attribute keys in canonical order (``persona-bench`` ``persona_keys``): the census contract
(``persona_lab.census.CENSUS_ATTRIBUTES`` and ``OPTIONAL_ATTRIBUTES``, the one source of the census keys)
with the open-ended and procedural keys in their canonical places."""

_PRINTED_FIRST = ("fertility", "hearing difficulty", "vision difficulty")
OPTIONAL_KEYS: tuple[str, ...] = _PRINTED_FIRST + tuple(
    k for k in OPTIONAL_ATTRIBUTES if k not in _PRINTED_FIRST
)
"""The optional census attributes (``persona_lab.census.OPTIONAL_ATTRIBUTES``) in the order the released text
prints them: fertility, hearing, vision, cognitive difficulty, ability to speak English."""

_BEFORE_OPTIONAL = ATTRIBUTE_KEYS[: ATTRIBUTE_KEYS.index("health insurance") + 1]
_AFTER_OPTIONAL = ATTRIBUTE_KEYS[
    ATTRIBUTE_KEYS.index("big five scores") : ATTRIBUTE_KEYS.index("religion") + 1
]

TEXT_ORDER: tuple[str, ...] = _BEFORE_OPTIONAL + OPTIONAL_KEYS + _AFTER_OPTIONAL
"""The order of ``key: value`` lines in PERSONA's text format."""

FIELD_NAMES: dict[str, str] = {key: key.replace(" ", "_") for key in ATTRIBUTE_KEYS}
"""PERSONA key -> Python field name of :class:`Persona` (spaces become underscores)."""


class Persona(BaseModel):
    """One persona as PERSONA prints it: each attribute is its text, or ``None`` when the key is absent.

    Values are kept verbatim (``income`` may be ``"70000.0"``, ``"0"`` or free text such as ``"No income"``
    in the released data), so parsing and re-serializing is byte-identical. Typed values (``age`` as an int,
    ``income`` as a number) live in the personas table; this type is the text layer.
    Construct it with field names (``household_language=...``) or with PERSONA keys via
    :meth:`from_mapping`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    age: str | None = Field(None, alias="age")
    sex: str | None = Field(None, alias="sex")
    race: str | None = Field(None, alias="race")
    ancestry: str | None = Field(None, alias="ancestry")
    household_language: str | None = Field(None, alias="household language")
    education: str | None = Field(None, alias="education")
    employment_status: str | None = Field(None, alias="employment status")
    class_of_worker: str | None = Field(None, alias="class of worker")
    industry_category: str | None = Field(None, alias="industry category")
    occupation_category: str | None = Field(None, alias="occupation category")
    detailed_job_description: str | None = Field(None, alias="detailed job description")
    income: str | None = Field(None, alias="income")
    marital_status: str | None = Field(None, alias="marital status")
    household_type: str | None = Field(None, alias="household type")
    family_presence_and_age: str | None = Field(None, alias="family presence and age")
    place_of_birth: str | None = Field(None, alias="place of birth")
    citizenship: str | None = Field(None, alias="citizenship")
    veteran_status: str | None = Field(None, alias="veteran status")
    disability: str | None = Field(None, alias="disability")
    health_insurance: str | None = Field(None, alias="health insurance")
    big_five_scores: str | None = Field(None, alias="big five scores")
    defining_quirks: str | None = Field(None, alias="defining quirks")
    mannerisms: str | None = Field(None, alias="mannerisms")
    personal_time: str | None = Field(None, alias="personal time")
    lifestyle: str | None = Field(None, alias="lifestyle")
    ideology: str | None = Field(None, alias="ideology")
    political_views: str | None = Field(None, alias="political views")
    religion: str | None = Field(None, alias="religion")
    cognitive_difficulty: str | None = Field(None, alias="cognitive difficulty")
    ability_to_speak_english: str | None = Field(None, alias="ability to speak english")
    vision_difficulty: str | None = Field(None, alias="vision difficulty")
    fertility: str | None = Field(None, alias="fertility")
    hearing_difficulty: str | None = Field(None, alias="hearing difficulty")

    @classmethod
    def from_mapping(cls, attributes: dict[str, str | None]) -> Persona:
        """Build a persona from a ``{PERSONA key: text}`` mapping (absent keys are ``None``).

        Raises:
            KeyError: a key is not one of the 33 PERSONA keys.
        """
        unknown = [k for k in attributes if k not in FIELD_NAMES]
        if unknown:
            raise KeyError(f"not PERSONA attribute keys: {unknown}; expected some of {list(ATTRIBUTE_KEYS)}")
        return cls.model_validate({FIELD_NAMES[k]: v for k, v in attributes.items()})

    def get(self, key: str) -> str | None:
        """The text of attribute ``key`` (a PERSONA key such as ``"household language"``), or ``None``."""
        return getattr(self, FIELD_NAMES[key])

    def attributes(self) -> dict[str, str]:
        """The present attributes as ``{PERSONA key: text}`` in :data:`TEXT_ORDER`."""
        out: dict[str, str] = {}
        for key in TEXT_ORDER:
            value = getattr(self, FIELD_NAMES[key])
            if value is not None:
                out[key] = value
        return out

    def to_text(self) -> str:
        """PERSONA's text format (see :func:`persona_lab.personas.serialize_persona`)."""
        from persona_lab.personas._text import serialize_persona

        return serialize_persona(self)

    @classmethod
    def from_text(cls, text: str, *, source: str = "<text>") -> Persona:
        """Parse PERSONA's text format (see :func:`persona_lab.personas.parse_persona`)."""
        from persona_lab.personas._text import parse_persona

        return parse_persona(text, source=source)
