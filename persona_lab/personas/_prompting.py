"""The LLM requests of the persona stage: profile text, the two templates, the answer schemas.

PERSONA (Castricato et al. 2024, arXiv 2407.17387, Sec. 3.1 and App. A) asks an LLM whether each procedural
profile is self-consistent and then has it write seven open-ended attributes. Both are one structured call
per persona: the answer must satisfy a JSON schema derived from a pydantic model (:class:`PersonaEnrichment`,
:class:`ConsistencyVerdict`). The prompts are the template files next to this module
(``enrich_system.txt``, ``enrich_user.txt``, ``consistency_system.txt``, ``consistency_user.txt``); they are
part of every request's messages, so the response cache key changes with them and an edited template never
reuses old answers. The same texts, unfilled, are what an answer must not echo
(:func:`enrichment_instructions`, :func:`consistency_instructions`; see ``persona_lab.llm.degenerate_reason``).

Young persons get a note in the prompt (:data:`NOT_APPLICABLE_BELOW_AGE`, :data:`VOTING_AGE`): in the 100
released personas we checked, all seven children under 9 have "Not applicable", "Not formed" or no value for
ideology and political views, and the 10-12-year-olds mostly do; teenagers (13-17) get leanings such as "Too
young to vote" or "Liberal"; children aged 1-4 have "Not applicable" (or "Too young to work") as job
description.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona_lab.config import RunConfig
from persona_lab.llm import LLMFailure, LLMRequest, LLMResponse
from persona_lab.personas._schema import OPEN_ENDED_KEYS, TEXT_ORDER
from persona_lab.personas._text import NOT_APPLICABLE, is_absent, is_absent_or_placeholder
from persona_lab.personas._traits import BIG_FIVE_COLUMNS, big_five_line
from persona_lab.templates import load_template

PACKAGE = "persona_lab.personas"
"""Where the templates live (``persona_lab.templates.load_template(PACKAGE, name)``)."""

TEMPLATES: tuple[Path, ...] = tuple(
    Path(__file__).resolve().parent / f"{name}.txt"
    for name in ("enrich_system", "enrich_user", "consistency_system", "consistency_user")
)
"""The template files of the persona stage's requests (a run's fingerprint includes their text)."""

NOT_APPLICABLE_BELOW_AGE: dict[str, int] = {
    "detailed job description": 5,
    "ideology": 13,
    "political views": 13,
}
"""Open-ended attribute -> age below which it is set to "Not applicable" (see the module docstring)."""

VOTING_AGE = 18
"""Persons from 13 to 17 are told to the model as too young to vote."""

ENRICHMENT_MAX_TOKENS = 512
"""Output budget of one enrichment answer (seven short phrases in JSON take about 150-250 tokens)."""
CONSISTENCY_MAX_TOKENS = 192
"""Output budget of one consistency verdict."""


def template(name: str) -> str:
    """The text of the persona stage's template ``name`` (e.g. ``"enrich_user"``)."""
    return load_template(PACKAGE, f"{name}.txt")


class PersonaEnrichment(BaseModel):
    """The seven open-ended attributes of a persona, as the model must return them (JSON)."""

    model_config = ConfigDict(extra="forbid")

    detailed_job_description: str = Field(
        description="What the person does day to day at work, at school or as a caregiver; 'Not applicable' for toddlers."
    )
    defining_quirks: str = Field(description="One or two distinctive habits or passions.")
    mannerisms: str = Field(description="How the person typically speaks or behaves around others.")
    personal_time: str = Field(description="How the person spends free time.")
    lifestyle: str = Field(description="The overall pattern of daily life, in a few words.")
    ideology: str = Field(
        description="Worldview or political philosophy; 'Not applicable' for children under 13."
    )
    political_views: str = Field(
        description="Party affiliation or voting leaning; 'Not applicable' for children under 13."
    )

    def attributes(self) -> dict[str, str]:
        """The answer as ``{PERSONA key: text}`` (``political_views`` -> ``political views``)."""
        return {key: clean(getattr(self, key.replace(" ", "_"))) for key in OPEN_ENDED_KEYS}


class ConsistencyVerdict(BaseModel):
    """The model's judgement of one procedural profile. ``reason`` comes first so that the verdict is
    written after (and conditioned on) the stated reason."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        description="One sentence naming the conflicting attributes, or 'No conflicting attributes'."
    )
    consistent: bool = Field(description="True if one real person could plausibly have every attribute.")


def _descriptions(model: type[BaseModel]) -> list[str]:
    return [str(p["description"]) for p in model.model_json_schema()["properties"].values()]


def enrichment_instructions() -> tuple[str, ...]:
    """What an enrichment answer must not echo: both templates (unfilled) and the schema's field descriptions."""
    return (template("enrich_system"), template("enrich_user"), *_descriptions(PersonaEnrichment))


def consistency_instructions() -> tuple[str, ...]:
    """What a consistency reason must not echo: both templates (unfilled) and the schema's field descriptions."""
    return (template("consistency_system"), template("consistency_user"), *_descriptions(ConsistencyVerdict))


def clean(text: str) -> str:
    """``text`` on one line: runs of whitespace become one space, ends stripped."""
    return re.sub(r"\s+", " ", str(text)).strip()


def age_of(row: Mapping[str, Any]) -> int | None:
    """The persona's age as an int, or ``None`` when it has none."""
    try:
        return int(float(row.get("age")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _format_value(key: str, value: Any) -> str:
    if key == "income" and isinstance(value, (int, float, np.integer, np.floating)):
        return f"${float(value):,.0f} per year"
    if key == "age" and isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return clean(str(value))


def _big_five(row: Mapping[str, Any]) -> str | None:
    value = row.get("big five scores")
    if not is_absent(value):
        return str(value)
    levels = [row.get(c) for c in BIG_FIVE_COLUMNS]
    return None if any(is_absent(v) for v in levels) else big_five_line(levels)


def _seed_items(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        return [s.strip() for s in re.split(r"[;\n]", value) if s.strip()]
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [str(v).strip() for v in value if not is_absent_or_placeholder(v)]
    return [str(value)]


def persona_profile(row: Mapping[str, Any]) -> str:
    """The procedural profile of a persona as ``key: value`` lines for a prompt.

    Census attributes, Big Five and religion in PERSONA's text order; open-ended attributes and absent
    optional census attributes are left out. Income is written in dollars per year (PINCP is annual).
    """
    lines = []
    for key in TEXT_ORDER:
        if key in OPEN_ENDED_KEYS:
            continue
        value = _big_five(row) if key == "big five scores" else row.get(key)
        if is_absent(value):
            continue
        lines.append(f"{key}: {_format_value(key, value)}")
    return "\n".join(lines)


def persona_seeds(row: Mapping[str, Any]) -> str:
    """The curated seed traits sampled for a persona (columns ``seed_*``) as ``name: a; b`` lines."""
    lines = []
    for col in sorted(k for k in row if str(k).startswith("seed_")):
        items = _seed_items(row[col])
        if items:
            lines.append(f"{col.removeprefix('seed_').replace('_', ' ')}: {'; '.join(items)}")
    return "\n".join(lines) if lines else "(none)"


def age_notes(age: int | None) -> str:
    """The prompt's note for a child or a teenager (empty for adults and unknown ages)."""
    if age is None:
        return ""
    forced = [k for k, limit in NOT_APPLICABLE_BELOW_AGE.items() if age < limit]
    if forced:
        keys = ", ".join(k.replace(" ", "_") for k in forced)
        return (
            f'This person is a {age}-year-old child: write "{NOT_APPLICABLE}" for {keys}, and describe '
            "school, play and family life in the other attributes.\n"
        )
    if age < VOTING_AGE:
        return (
            f"This person is {age} years old, too young to vote: political_views states at most a leaning "
            "(or that the person is too young to vote), and the job description is school or a teenage job.\n"
        )
    return ""


def enrichment_request(row: Mapping[str, Any], *, config: RunConfig | None = None) -> LLMRequest:
    """The structured LLM request that writes one persona's open-ended attributes.

    Args:
        row: one persona (PERSONA keys as columns, ``seed_*`` columns with the sampled seed traits).
        config: temperature and seed come from ``config.llm.temperature`` and ``config.seed``.
    """
    cfg = config or RunConfig()
    user = Template(template("enrich_user")).substitute(
        profile=persona_profile(row), seeds=persona_seeds(row), age_notes=age_notes(age_of(row))
    )
    return LLMRequest.chat(
        user,
        system=template("enrich_system"),
        temperature=cfg.llm.temperature,
        max_tokens=ENRICHMENT_MAX_TOKENS,
        seed=cfg.seed,
        json_schema=PersonaEnrichment.model_json_schema(),
        tag=str(row.get("persona_id", "")),
    )


def consistency_request(row: Mapping[str, Any], *, config: RunConfig | None = None) -> LLMRequest:
    """The structured LLM request that judges whether one procedural profile is self-consistent."""
    cfg = config or RunConfig()
    profile = persona_profile(row)
    seeds = persona_seeds(row)
    if seeds != "(none)":
        profile += "\n" + seeds
    user = Template(template("consistency_user")).substitute(profile=profile)
    return LLMRequest.chat(
        user,
        system=template("consistency_system"),
        temperature=cfg.llm.temperature,
        max_tokens=CONSISTENCY_MAX_TOKENS,
        seed=cfg.seed,
        json_schema=ConsistencyVerdict.model_json_schema(),
        tag=str(row.get("persona_id", "")),
    )


def parse_answer(result: LLMResponse | LLMFailure, model: type[BaseModel]) -> tuple[BaseModel | None, str]:
    """The validated answer, or ``None`` and a ``"kind: reason"`` failure string."""
    if isinstance(result, LLMFailure):
        return None, f"{result.kind}: {result.reason}"
    if result.parsed is None:
        return None, f"unparseable: the answer has no JSON object: {result.text[:160]!r}"
    try:
        return model.model_validate(result.parsed), ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        return None, f"unparseable: answer field {where}: {first['msg']}"


def raw_text(result: LLMResponse | LLMFailure) -> str:
    """The model's answer text as it came (``""`` for a call that failed without an answer)."""
    return result.text if isinstance(result, LLMResponse) else ""


def persona_ids(personas: pd.DataFrame) -> list[str]:
    """The ``persona_id`` column as strings, or the index when the table has none."""
    if "persona_id" in personas.columns:
        return [str(x) for x in personas["persona_id"]]
    return [str(i) for i in personas.index]
