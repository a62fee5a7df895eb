"""LLM enrichment of procedural personas: the seven open-ended attributes (PERSONA Sec. 3.1, App. A).

PERSONA (Castricato et al. 2024, arXiv 2407.17387) has an LLM (GPT-4 in the paper) write seven open-ended
attributes as short phrases: detailed job description, defining quirks, mannerisms, personal time,
lifestyle, ideology and political views. Here that is one structured call per persona
(:func:`persona_lab.personas._prompting.enrichment_request`).

An answer is used only when it satisfies the schema and is not degenerate: an answer whose fields echo the
instructions, are empty, or repeat one another (the same boilerplate sentence in every field) is checked with
``persona_lab.llm.degenerate_fields`` and recorded as a failure like a call that failed after the runner's
retries. Failures are recorded, never dropped: the persona keeps empty open-ended attributes, its
``enrichment_failure`` says why (``"kind: reason"``) and ``enrichment_raw`` keeps the model's text.

Deterministic rules, applied after the model answers so that every backend agrees on them
(:data:`~persona_lab.personas._prompting.NOT_APPLICABLE_BELOW_AGE`): PERSONA writes "Not applicable" (or
leaves the key out) for the ideology and political views of young children and for the job of toddlers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from persona_lab.config import RunConfig
from persona_lab.errors import PersonaLabError
from persona_lab.llm import LLMFailure, LLMResponse, degenerate_failure, degenerate_fields, run_requests
from persona_lab.personas._prompting import (
    NOT_APPLICABLE_BELOW_AGE,
    PersonaEnrichment,
    age_of,
    enrichment_instructions,
    enrichment_request,
    parse_answer,
    raw_text,
)
from persona_lab.personas._prompting import persona_ids as _ids
from persona_lab.personas._schema import OPEN_ENDED_KEYS
from persona_lab.personas._text import NOT_APPLICABLE, is_absent_or_placeholder, render_texts

if TYPE_CHECKING:
    from persona_lab.llm import Backend, ResponseCache


def apply_age_rules(attributes: dict[str, str | None], age: int | None) -> dict[str, str | None]:
    """Set the attributes of :data:`NOT_APPLICABLE_BELOW_AGE` to "Not applicable" for the young."""
    if age is None:
        return dict(attributes)
    return {
        k: (NOT_APPLICABLE if age < NOT_APPLICABLE_BELOW_AGE.get(k, -1) else v) for k, v in attributes.items()
    }


def read_enrichment(result: LLMResponse | LLMFailure) -> tuple[dict[str, str] | None, str]:
    """The open-ended attributes of one enrichment answer, or ``None`` and the failure string.

    A failed call, an answer outside the schema (``"unparseable: ..."``) and a degenerate answer
    (``"degenerate: same text as another field (lifestyle, mannerisms)"``) are failures.
    """
    answer, failure = parse_answer(result, PersonaEnrichment)
    if answer is None:
        return None, failure
    assert isinstance(answer, PersonaEnrichment)
    attributes = answer.attributes()
    degenerate = degenerate_fields(attributes, instructions=enrichment_instructions())
    if degenerate:
        return None, degenerate_failure(degenerate)
    return attributes, ""


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
        ``"kind: reason"``, degenerate answers included), ``enrichment_raw`` (the model's answer text, ``""``
        when not sent or when the call failed) and ``text`` re-rendered when the table has one.
    """
    cfg = config or RunConfig()
    k = limit if limit is not None else cfg.personas.enrich
    if k is not None and k < 0:
        raise PersonaLabError(f"enrich limit {k}: expected a number of personas >= 0 (or None for all)")
    k = len(personas) if k is None else min(k, len(personas))
    out = personas.copy()
    records = personas.to_dict("records")[:k]
    requests = [enrichment_request(r, config=cfg) for r in records]
    results = (
        run_requests(
            requests, backend, cache=cache, config=cfg.llm, progress=progress, desc="enrich personas"
        )
        if requests
        else []
    )
    values: dict[str, list[str | None]] = {key: [] for key in OPEN_ENDED_KEYS}
    enriched: list[bool] = []
    failures: list[str] = []
    raws: list[str] = []
    for i in range(len(personas)):
        attrs: dict[str, str | None] | None = None
        failure, raw = "", ""
        if i < k:
            answer, failure = read_enrichment(results[i])
            raw = raw_text(results[i])
            if answer is not None:
                attrs = apply_age_rules(dict(answer), age_of(records[i]))
        if attrs is None:
            existing = {key: out[key].iloc[i] if key in out.columns else None for key in OPEN_ENDED_KEYS}
            values_i = {key: None if is_absent_or_placeholder(v) else v for key, v in existing.items()}
        else:
            values_i = attrs
        for key in OPEN_ENDED_KEYS:
            values[key].append(values_i[key])
        enriched.append(attrs is not None)
        failures.append(failure)
        raws.append(raw)
    for key in OPEN_ENDED_KEYS:
        out[key] = pd.Series(values[key], index=out.index, dtype=object)
    out["enriched"] = pd.Series(enriched, index=out.index, dtype=bool)
    out["enrichment_failure"] = pd.Series(failures, index=out.index, dtype=object)
    out["enrichment_raw"] = pd.Series(raws, index=out.index, dtype=object)
    if "text" in out.columns:
        out["text"] = render_texts(out)
    return out


def enrichment_before_after(
    before: pd.DataFrame, after: pd.DataFrame, persona_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """A tidy before/after view of enrichment, for display in a notebook.

    Returns:
        One row per (persona, open-ended attribute): ``persona_id``, ``attribute``, ``before`` (the
        value before enrichment, usually empty), ``after`` and ``enrichment_failure`` (``""`` when the
        call succeeded). Rows follow ``after``'s order, attributes PERSONA's order.
    """
    lookup = dict(zip(_ids(before), before.to_dict("records"), strict=True))
    wanted = set(persona_ids) if persona_ids is not None else None
    rows = []
    for pid, rec in zip(_ids(after), after.to_dict("records"), strict=True):
        if wanted is not None and pid not in wanted:
            continue
        old = lookup.get(pid, {})
        for key in OPEN_ENDED_KEYS:
            b, a = old.get(key), rec.get(key)
            rows.append(
                {
                    "persona_id": pid,
                    "attribute": key,
                    "before": "" if is_absent_or_placeholder(b) else str(b),
                    "after": "" if is_absent_or_placeholder(a) else str(a),
                    "enrichment_failure": str(rec.get("enrichment_failure", "") or ""),
                }
            )
    return pd.DataFrame(rows, columns=["persona_id", "attribute", "before", "after", "enrichment_failure"])
