"""LLM enrichment of procedural personas and the LLM self-consistency check (PERSONA §3, App. A).

PERSONA (Castricato et al. 2024, arXiv 2407.17387) draws census attributes, Big Five levels, religion and
curated seed traits procedurally, then

1. asks an LLM whether each procedural profile is self-consistent and resamples the profiles it rejects
   (about 8.5 % in the paper), and
2. has an LLM (GPT-4 in the paper) write seven open-ended attributes: detailed job description, defining
   quirks, mannerisms, personal time, lifestyle, ideology and political views, as short phrases.

Here both are one structured call per persona through the project's LLM layer: the answer must satisfy a
JSON schema derived from a pydantic model (:class:`PersonaEnrichment`, :class:`ConsistencyVerdict`).
Prompts are the template files next to this module; they are part of every request's messages, so the
response cache key changes with them and an edited template never reuses old answers. Calls that still
fail after the runner's retries (or answer outside the schema) are recorded, never dropped: the persona
keeps empty open-ended attributes and its ``enrichment_failure`` says why.

Deterministic rules, applied after the model answers so that every backend agrees on them
(:data:`NOT_APPLICABLE_BELOW_AGE`): PERSONA writes "Not applicable" (or leaves the key out) for the
ideology and political views of young children and for the job of toddlers. In the 100 released personas
we checked, all seven children under 9 have "Not applicable", "Not formed" or no value for ideology and
political views, and the 10-12-year-olds mostly do; teenagers (13-17) get leanings such as "Too young to
vote" or "Liberal". Children aged 1-4 have "Not applicable" (or "Too young to work") as job description.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona_lab.config import RunConfig
from persona_lab.errors import PersonaLabError
from persona_lab.io import write_table
from persona_lab.llm._types import LLMFailure, LLMRequest, LLMResponse
from persona_lab.personas._quality import is_missing
from persona_lab.personas._schema import OPEN_ENDED_KEYS, TEXT_ORDER
from persona_lab.personas._text import NOT_APPLICABLE

if TYPE_CHECKING:
    from persona_lab.census._schema import CensusSource
    from persona_lab.llm._cache import ResponseCache
    from persona_lab.llm._types import Backend

PROMPT_DIR = Path(__file__).resolve().parent
"""Directory of the prompt templates (``enrich_*.txt``, ``consistency_*.txt``)."""

PAPER_REJECTION_RATE = 0.085
"""Share of procedural profiles PERSONA's LLM consistency check rejected (paper §3: about 8.5 %)."""

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

_BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


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
        return {key: _clean(getattr(self, key.replace(" ", "_"))) for key in OPEN_ENDED_KEYS}


class ConsistencyVerdict(BaseModel):
    """The model's judgement of one procedural profile. ``reason`` comes first so that the verdict is
    written after (and conditioned on) the stated reason."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        description="One sentence naming the conflicting attributes, or 'No conflicting attributes'."
    )
    consistent: bool = Field(description="True if one real person could plausibly have every attribute.")


@cache
def load_template(name: str) -> str:
    """The text of prompt template ``name`` (e.g. ``"enrich_user"``) from :data:`PROMPT_DIR`."""
    path = PROMPT_DIR / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:  # pragma: no cover - a broken installation
        raise PersonaLabError(f"{path}: prompt template missing ({exc}); reinstall persona-lab") from exc


def _absent(value: Any) -> bool:
    """No value at all (``None``, NaN, empty). Unlike ``is_missing``, the census value ``"None"`` is kept."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return isinstance(value, str) and not value.strip()


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _age(row: Mapping[str, Any]) -> int | None:
    value = row.get("age")
    try:
        age = int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return age


def _format_value(key: str, value: Any) -> str:
    if key == "income" and isinstance(value, (int, float, np.integer, np.floating)):
        return f"${float(value):,.0f} per year"
    if key == "age" and isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return _clean(str(value))


def _big_five_text(row: Mapping[str, Any]) -> str | None:
    value = row.get("big five scores")
    if not _absent(value):
        return str(value)
    levels = [row.get(t) for t in _BIG_FIVE]
    if any(_absent(v) for v in levels):
        return None
    return ", ".join(f"{t.capitalize()}: {v}" for t, v in zip(_BIG_FIVE, levels, strict=True))


def _seed_items(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [s.strip() for s in re.split(r"[;\n]", value) if s.strip()]
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [str(v).strip() for v in value if not is_missing(v)]
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
        value = _big_five_text(row) if key == "big five scores" else row.get(key)
        if _absent(value):
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


def _age_notes(age: int | None) -> str:
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
    user = Template(load_template("enrich_user")).substitute(
        profile=persona_profile(row), seeds=persona_seeds(row), age_notes=_age_notes(_age(row))
    )
    return LLMRequest.chat(
        user,
        system=load_template("enrich_system"),
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
    user = Template(load_template("consistency_user")).substitute(profile=profile)
    return LLMRequest.chat(
        user,
        system=load_template("consistency_system"),
        temperature=cfg.llm.temperature,
        max_tokens=CONSISTENCY_MAX_TOKENS,
        seed=cfg.seed,
        json_schema=ConsistencyVerdict.model_json_schema(),
        tag=str(row.get("persona_id", "")),
    )


def _run(
    requests: Sequence[LLMRequest],
    backend: str | Backend,
    *,
    cache: ResponseCache | Path | None,
    config: RunConfig,
    progress: bool | str,
    desc: str,
) -> list[LLMResponse | LLMFailure]:
    from persona_lab.llm._runner import run_requests

    if not requests:
        return []
    return run_requests(requests, backend, cache=cache, config=config.llm, progress=progress, desc=desc)


def _parse(result: LLMResponse | LLMFailure, model: type[BaseModel]) -> tuple[BaseModel | None, str]:
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


def _ids(personas: pd.DataFrame) -> list[str]:
    if "persona_id" in personas.columns:
        return [str(x) for x in personas["persona_id"]]
    return [str(i) for i in personas.index]


def apply_age_rules(attributes: dict[str, str | None], age: int | None) -> dict[str, str | None]:
    """Set the attributes of :data:`NOT_APPLICABLE_BELOW_AGE` to "Not applicable" for the young."""
    if age is None:
        return dict(attributes)
    return {
        k: (NOT_APPLICABLE if age < NOT_APPLICABLE_BELOW_AGE.get(k, -1) else v) for k, v in attributes.items()
    }


def _render_text(personas: pd.DataFrame) -> pd.Series:
    """PERSONA's text of each persona, now with its open-ended attributes."""
    from persona_lab.personas._text import render_texts

    return render_texts(personas)


def enrich_personas(
    personas: pd.DataFrame,
    backend: str | Backend,
    *,
    cache: ResponseCache | Path | None = None,
    config: RunConfig | None = None,
    limit: int | None = None,
    progress: bool | str = True,
) -> pd.DataFrame:
    """Write the seven open-ended attributes of each persona with one structured LLM call.

    Args:
        personas: procedural personas (``generate_personas`` output: PERSONA keys as columns,
            ``persona_id``, ``seed_*`` columns).
        backend: a backend spec (``"local"``, ``"openai:gpt-4o"``, ...) or a backend object.
        cache: the run's response cache (a rerun replays answers with zero calls).
        config: run configuration (temperature, seed, runner settings, ``personas.enrich``).
        limit: enrich only the first ``limit`` personas in table order; ``None`` uses
            ``config.personas.enrich`` (``None`` there = all). The others keep empty attributes.
        progress: progress bar (see ``run_requests``).

    Returns:
        A copy of ``personas`` with the open-ended columns filled (``None`` where not enriched or failed),
        ``enriched`` (bool: the model's answer was used), ``enrichment_failure`` (``""`` or
        ``"kind: reason"``), and ``text`` re-rendered when the table has one.
    """
    cfg = config or RunConfig()
    k = limit if limit is not None else cfg.personas.enrich
    if k is not None and k < 0:
        raise PersonaLabError(f"enrich limit {k}: expected a number of personas >= 0 (or None for all)")
    k = len(personas) if k is None else min(k, len(personas))
    out = personas.copy()
    records = personas.to_dict("records")[:k]
    requests = [enrichment_request(r, config=cfg) for r in records]
    results = _run(requests, backend, cache=cache, config=cfg, progress=progress, desc="enrich personas")
    values: dict[str, list[str | None]] = {key: [] for key in OPEN_ENDED_KEYS}
    enriched: list[bool] = []
    failures: list[str] = []
    for i in range(len(personas)):
        row = records[i] if i < len(records) else None
        answer: BaseModel | None = None
        failure = ""
        if row is not None:
            answer, failure = _parse(results[i], PersonaEnrichment)
        if answer is None:
            existing = {key: out[key].iloc[i] if key in out.columns else None for key in OPEN_ENDED_KEYS}
            attrs = {key: None if is_missing(v) else v for key, v in existing.items()}
        else:
            assert isinstance(answer, PersonaEnrichment)
            attrs = apply_age_rules(answer.attributes(), _age(row or {}))  # type: ignore[arg-type]
        for key in OPEN_ENDED_KEYS:
            values[key].append(attrs[key])
        enriched.append(answer is not None)
        failures.append(failure)
    for key in OPEN_ENDED_KEYS:
        out[key] = pd.Series(values[key], index=out.index, dtype=object)
    out["enriched"] = pd.Series(enriched, index=out.index, dtype=bool)
    out["enrichment_failure"] = pd.Series(failures, index=out.index, dtype=object)
    if "text" in out.columns:
        out["text"] = _render_text(out)
    return out


def check_consistency(
    personas: pd.DataFrame,
    backend: str | Backend,
    *,
    cache: ResponseCache | Path | None = None,
    config: RunConfig | None = None,
    progress: bool | str = True,
) -> pd.DataFrame:
    """Ask the LLM whether each procedural profile is self-consistent (PERSONA §3).

    Returns:
        One verdict per persona, in input order: ``persona_id``; ``consistent`` (nullable boolean:
        ``<NA>`` when the call failed, so an outage never rejects a persona); ``reason`` (the model's
        reason, ``""`` on failure); ``check_failure`` (``""`` or ``"kind: reason"``).
    """
    cfg = config or RunConfig()
    records = personas.to_dict("records")
    requests = [consistency_request(r, config=cfg) for r in records]
    results = _run(requests, backend, cache=cache, config=cfg, progress=progress, desc="consistency check")
    consistent: list[bool | None] = []
    reasons: list[str] = []
    failures: list[str] = []
    for result in results:
        verdict, failure = _parse(result, ConsistencyVerdict)
        if verdict is None:
            consistent.append(None)
            reasons.append("")
        else:
            assert isinstance(verdict, ConsistencyVerdict)
            consistent.append(verdict.consistent)
            reasons.append(_clean(verdict.reason))
        failures.append(failure)
    return pd.DataFrame(
        {
            "persona_id": _ids(personas),
            "consistent": pd.array(consistent, dtype="boolean"),
            "reason": pd.Series(reasons, dtype=object),
            "check_failure": pd.Series(failures, dtype=object),
        }
    )


@dataclass(frozen=True)
class ConsistencyReport:
    """Outcome of the LLM consistency loop.

    Attributes:
        checked: profiles sent to the check over all rounds (replacements included).
        rejected: profiles the model called inconsistent.
        failed: checks that failed (kept, not rejected).
        unresolved: personas still judged inconsistent after the last round (kept, ``llm_consistent``
            False).
        rounds: rounds run; ``per_round`` holds ``(checked, rejected)`` per round.
        paper_rate: PERSONA's reported rejection rate, for comparison.
    """

    checked: int = 0
    rejected: int = 0
    failed: int = 0
    unresolved: int = 0
    rounds: int = 0
    per_round: tuple[tuple[int, int], ...] = ()
    paper_rate: float = PAPER_REJECTION_RATE

    @property
    def rejection_rate(self) -> float:
        """Rejected / checked (NaN when nothing was checked)."""
        return self.rejected / self.checked if self.checked else math.nan

    def describe(self) -> str:
        """One line for logs and the CLI."""
        if not self.checked:
            return "LLM consistency check: not run"
        return (
            f"LLM consistency check: {self.rejected}/{self.checked} profiles rejected "
            f"({self.rejection_rate:.1%}; PERSONA: {self.paper_rate:.1%}) in {self.rounds} round(s), "
            f"{self.failed} check failure(s), {self.unresolved} unresolved"
        )


@dataclass(frozen=True)
class PersonaCompletion:
    """Complete personas with the records of how they were made.

    Attributes:
        personas: the final table: procedural attributes, ``llm_consistent``, ``consistency_reason``,
            ``check_failure``, the open-ended attributes, ``enriched``, ``enrichment_failure``.
        rejected: every profile the LLM rejected: ``round``, ``persona_id`` (the slot it was drawn
            for), ``reason``, then the profile's columns.
        consistency: the rejection statistics.
        generation: the procedural stage's report (deterministic-rule rejections), as returned by
            ``generate_personas``, one per draw (the first, then one per replacement round).
    """

    personas: pd.DataFrame
    rejected: pd.DataFrame
    consistency: ConsistencyReport
    generation: tuple[Any, ...] = field(default=())


REJECTED_TABLE = "rejected_personas"
"""Table name (and file stem) of the rejected profiles in the run directory."""


_VERDICT_COLUMNS = ("llm_consistent", "consistency_reason", "check_failure")


def _round_seed(seed: int, round_: int) -> int:
    return int(np.random.SeedSequence([seed, round_]).generate_state(1)[0])


def complete_personas(
    source: CensusSource,
    n: int,
    seed: int,
    backend: str | Backend,
    *,
    cache: ResponseCache | Path | None = None,
    config: RunConfig | None = None,
    max_rounds: int = 3,
    enrich: bool = True,
    run_dir: Path | None = None,
    progress: bool | str = True,
    **generate_kwargs: Any,
) -> PersonaCompletion:
    """Draw procedural personas, reject inconsistent ones with the LLM, redraw them, then enrich.

    PERSONA resamples every profile its LLM check rejects. Here a rejected persona's slot (its
    ``persona_id`` and ``split``) is refilled by a fresh procedural draw (``generate_personas`` with a
    seed derived from ``seed`` and the round), which is checked again, for at most ``max_rounds``
    rounds. Profiles still rejected after the last round are kept with ``llm_consistent`` False (and
    counted as ``unresolved``) so the table keeps ``n`` rows; a failed check keeps the profile.

    Args:
        source: where census rows come from (PUMS or the embedded census model).
        n: number of personas.
        seed: seed of the procedural draws (rerunning gives the same personas and, through the
            response cache, the same answers).
        backend: backend spec or object for both LLM calls.
        cache: the run's response cache.
        config: run configuration; ``personas.llm_consistency`` False skips the check and
            ``personas.enrich`` limits enrichment.
        max_rounds: bound on check-and-redraw rounds (>= 1).
        enrich: write the open-ended attributes (``enrich_personas``) after the check.
        run_dir: when given, the rejected profiles are written to ``run_dir/rejected_personas.parquet``.
        progress: progress bars.
        **generate_kwargs: passed to ``generate_personas`` (e.g. ``n_train``).
    """
    from persona_lab.personas._generate import generate_personas

    cfg = config or RunConfig()
    if max_rounds < 1:
        raise PersonaLabError(f"max_rounds={max_rounds}: expected at least 1 check round")
    personas, gen_report = generate_personas(source, n, seed, **generate_kwargs)
    personas = personas.reset_index(drop=True)
    generation: list[Any] = [gen_report]
    n_checked = n_rejected = n_failed = 0
    per_round: list[tuple[int, int]] = []
    rejected_parts: list[pd.DataFrame] = []
    personas["llm_consistent"] = pd.array([pd.NA] * len(personas), dtype="boolean")
    personas["consistency_reason"] = pd.Series([""] * len(personas), dtype=object)
    personas["check_failure"] = pd.Series([""] * len(personas), dtype=object)
    pending = list(range(len(personas))) if cfg.personas.llm_consistency else []
    round_ = 0
    while pending and round_ < max_rounds:
        round_ += 1
        batch = personas.loc[pending]
        verdicts = check_consistency(batch, backend, cache=cache, config=cfg, progress=progress)
        personas.loc[pending, "llm_consistent"] = verdicts["consistent"].to_numpy()
        personas.loc[pending, "consistency_reason"] = verdicts["reason"].to_numpy()
        personas.loc[pending, "check_failure"] = verdicts["check_failure"].to_numpy()
        is_rejected = verdicts["consistent"].eq(False).fillna(False).to_numpy(dtype=bool)
        rejected_idx = [i for i, r in zip(pending, is_rejected, strict=True) if r]
        n_checked += len(pending)
        n_rejected += len(rejected_idx)
        n_failed += int((verdicts["check_failure"] != "").sum())
        per_round.append((len(pending), len(rejected_idx)))
        if rejected_idx:
            part = personas.loc[rejected_idx].drop(columns=list(_VERDICT_COLUMNS))
            part["reason"] = personas.loc[rejected_idx, "consistency_reason"]
            part.insert(0, "round", round_)
            rejected_parts.append(part)
        if not rejected_idx or round_ == max_rounds:
            pending = rejected_idx
            break
        # the slots keep their split, so the replacements' own split does not matter
        fresh, report = generate_personas(
            source, len(rejected_idx), _round_seed(seed, round_), **(generate_kwargs | {"n_train": 0})
        )
        generation.append(report)
        fresh = fresh.reset_index(drop=True)
        for slot_col in ("persona_id", "split"):
            if slot_col in personas.columns:
                fresh[slot_col] = personas.loc[rejected_idx, slot_col].to_numpy()
        for col in ("llm_consistent", "consistency_reason", "check_failure"):
            fresh[col] = personas.loc[rejected_idx, col].to_numpy()
        fresh.index = pd.Index(rejected_idx)
        personas = pd.concat([personas.drop(index=rejected_idx), fresh]).sort_index()
        pending = rejected_idx
    unresolved = len(pending)
    if unresolved:
        warnings.warn(
            f"{unresolved} persona(s) still judged inconsistent after {max_rounds} round(s); kept with "
            "llm_consistent=False",
            stacklevel=2,
        )
    rejected = (
        pd.concat(rejected_parts, ignore_index=True)
        if rejected_parts
        else pd.DataFrame(
            columns=["round", *(c for c in personas.columns if c not in _VERDICT_COLUMNS), "reason"]
        )
    )
    consistency = ConsistencyReport(
        checked=n_checked,
        rejected=n_rejected,
        failed=n_failed,
        unresolved=unresolved,
        rounds=round_,
        per_round=tuple(per_round),
    )
    if enrich:
        personas = enrich_personas(personas, backend, cache=cache, config=cfg, progress=progress)
    if run_dir is not None:
        write_rejected(rejected, run_dir)
    return PersonaCompletion(
        personas=personas, rejected=rejected, consistency=consistency, generation=tuple(generation)
    )


def write_rejected(rejected: pd.DataFrame, run_dir: Path) -> Path:
    """Write the rejected profiles to ``run_dir/rejected_personas.parquet`` (atomically)."""
    return write_table(rejected, Path(run_dir) / f"{REJECTED_TABLE}.parquet", table=REJECTED_TABLE)


def enrichment_before_after(
    before: pd.DataFrame, after: pd.DataFrame, persona_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """A tidy before/after view of enrichment, for display in a notebook.

    Returns:
        One row per (persona, open-ended attribute): ``persona_id``, ``attribute``, ``before`` (the
        value before enrichment, usually empty), ``after`` and ``enrichment_failure`` (``""`` when the
        call succeeded). Rows follow ``after``'s order, attributes PERSONA's order.
    """
    before_ids, after_ids = _ids(before), _ids(after)
    lookup = dict(zip(before_ids, before.to_dict("records"), strict=True))
    wanted = set(persona_ids) if persona_ids is not None else None
    rows = []
    for pid, rec in zip(after_ids, after.to_dict("records"), strict=True):
        if wanted is not None and pid not in wanted:
            continue
        old = lookup.get(pid, {})
        for key in OPEN_ENDED_KEYS:
            b, a = old.get(key), rec.get(key)
            rows.append(
                {
                    "persona_id": pid,
                    "attribute": key,
                    "before": "" if is_missing(b) else str(b),
                    "after": "" if is_missing(a) else str(a),
                    "enrichment_failure": str(rec.get("enrichment_failure", "") or ""),
                }
            )
    return pd.DataFrame(rows, columns=["persona_id", "attribute", "before", "after", "enrichment_failure"])
