"""The LLM self-consistency check and the redraw loop that completes a persona table (PERSONA Sec. 3).

PERSONA (Castricato et al. 2024, arXiv 2407.17387) draws census attributes, Big Five levels, religion and
curated seed traits procedurally, asks an LLM whether each procedural profile is self-consistent, resamples
the profiles it rejects (about 8.5 % in the paper) and then enriches the personas
(:func:`persona_lab.personas._enrich.enrich_personas`). :func:`complete_personas` is that whole loop.

A verdict is used only when it satisfies the schema and its reason is a real reason: a reason that echoes
the instructions ("Is this profile self-consistent?") or is empty is a degenerate answer
(``persona_lab.llm.degenerate_reason``) and is recorded as a check failure, with the model's text kept. A
failed check never rejects a persona.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from persona_lab.config import RunConfig
from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    DEGENERATE,
    LLMFailure,
    LLMResponse,
    degenerate_failure,
    degenerate_reason,
    run_requests,
)
from persona_lab.personas._enrich import enrich_personas
from persona_lab.personas._generate import generate_personas
from persona_lab.personas._prompting import (
    ConsistencyVerdict,
    clean,
    consistency_instructions,
    consistency_request,
    parse_answer,
    persona_ids,
    raw_text,
)

if TYPE_CHECKING:
    from persona_lab.census import CensusSource
    from persona_lab.llm import Backend, ResponseCache

PAPER_REJECTION_RATE = 0.085
"""Share of procedural profiles PERSONA's LLM consistency check rejected (paper Sec. 3: about 8.5 %)."""


def read_verdict(result: LLMResponse | LLMFailure) -> tuple[ConsistencyVerdict | None, str]:
    """The verdict of one consistency answer, or ``None`` and the failure string.

    A failed call, an answer outside the schema and a degenerate reason (``"degenerate: echoes the
    instruction"``, ``"degenerate: empty rationale"``) are failures.
    """
    verdict, failure = parse_answer(result, ConsistencyVerdict)
    if verdict is None:
        return None, failure
    assert isinstance(verdict, ConsistencyVerdict)
    reason = degenerate_reason(verdict.reason, instructions=consistency_instructions(), rationale=True)
    if reason is not None:
        return None, degenerate_failure(reason)
    return verdict, ""


def check_consistency(
    personas: pd.DataFrame,
    backend: str | Backend,
    *,
    cache: ResponseCache | Path | None = None,
    config: RunConfig | None = None,
    progress: bool | str = True,
) -> pd.DataFrame:
    """Ask the LLM whether each procedural profile is self-consistent (PERSONA Sec. 3).

    Returns:
        One verdict per persona, in input order: ``persona_id``; ``consistent`` (nullable boolean:
        ``<NA>`` when the check failed, so an outage or a degenerate answer never rejects a persona);
        ``reason`` (the model's reason, ``""`` on failure); ``check_failure`` (``""`` or ``"kind: reason"``);
        ``raw_answer`` (the model's answer text, ``""`` when the call failed).
    """
    cfg = config or RunConfig()
    requests = [consistency_request(r, config=cfg) for r in personas.to_dict("records")]
    results = (
        run_requests(
            requests, backend, cache=cache, config=cfg.llm, progress=progress, desc="consistency check"
        )
        if requests
        else []
    )
    consistent: list[bool | None] = []
    reasons: list[str] = []
    failures: list[str] = []
    for result in results:
        verdict, failure = read_verdict(result)
        consistent.append(None if verdict is None else verdict.consistent)
        reasons.append("" if verdict is None else clean(verdict.reason))
        failures.append(failure)
    return pd.DataFrame(
        {
            "persona_id": persona_ids(personas),
            "consistent": pd.array(consistent, dtype="boolean"),
            "reason": pd.Series(reasons, dtype=object),
            "check_failure": pd.Series(failures, dtype=object),
            "raw_answer": pd.Series([raw_text(r) for r in results], dtype=object),
        }
    )


@dataclass(frozen=True)
class ConsistencyReport:
    """Outcome of the LLM consistency loop.

    Attributes:
        checked: profiles sent to the check over all rounds (replacements included).
        rejected: profiles the model called inconsistent.
        failed: checks that failed (kept, not rejected), degenerate answers included.
        degenerate: of the failed checks, those whose answer was degenerate (an echoed or empty reason).
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
    degenerate: int = 0

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
            f"{self.failed} check failure(s) ({self.degenerate} degenerate answer(s)), "
            f"{self.unresolved} unresolved"
        )


@dataclass(frozen=True)
class PersonaCompletion:
    """Complete personas with the records of how they were made.

    Attributes:
        personas: the final table: procedural attributes, ``llm_consistent``, ``consistency_reason``,
            ``check_failure``, ``consistency_raw``, the open-ended attributes, ``enriched``,
            ``enrichment_failure``, ``enrichment_raw``.
        rejected: every profile the LLM rejected: ``round``, ``persona_id`` (the slot it was drawn
            for), ``reason``, then the profile's columns (the table ``rejected_personas``).
        consistency: the rejection statistics.
        generation: the procedural stage's report (deterministic-rule rejections), as returned by
            ``generate_personas``, one per draw (the first, then one per replacement round).
    """

    personas: pd.DataFrame
    rejected: pd.DataFrame
    consistency: ConsistencyReport
    generation: tuple[Any, ...] = field(default=())


_VERDICT_COLUMNS = {
    "llm_consistent": "consistent",
    "consistency_reason": "reason",
    "check_failure": "check_failure",
    "consistency_raw": "raw_answer",
}
"""Personas-table column -> the ``check_consistency`` column it is filled from."""


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
    progress: bool | str = True,
    **generate_kwargs: Any,
) -> PersonaCompletion:
    """Draw procedural personas, reject inconsistent ones with the LLM, redraw them, then enrich.

    PERSONA resamples every profile its LLM check rejects. Here a rejected persona's slot (its
    ``persona_id`` and ``split``) is refilled by a fresh procedural draw (``generate_personas`` with a
    seed derived from ``seed`` and the round), which is checked again, for at most ``max_rounds``
    rounds. Profiles still rejected after the last round are kept with ``llm_consistent`` False (and
    counted as ``unresolved``) so the table keeps ``n`` rows; a failed check keeps the profile. Nothing is
    written: the caller stores ``personas`` and ``rejected``.

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
        progress: progress bars.
        **generate_kwargs: passed to ``generate_personas`` (e.g. ``n_train``).
    """
    cfg = config or RunConfig()
    if max_rounds < 1:
        raise PersonaLabError(f"max_rounds={max_rounds}: expected at least 1 check round")
    personas, gen_report = generate_personas(source, n, seed, **generate_kwargs)
    personas = personas.reset_index(drop=True)
    generation: list[Any] = [gen_report]
    n_checked = n_rejected = n_failed = n_degenerate = 0
    per_round: list[tuple[int, int]] = []
    rejected_parts: list[pd.DataFrame] = []
    personas["llm_consistent"] = pd.array([pd.NA] * len(personas), dtype="boolean")
    for col in ("consistency_reason", "check_failure", "consistency_raw"):
        personas[col] = pd.Series([""] * len(personas), dtype=object)
    pending = list(range(len(personas))) if cfg.personas.llm_consistency else []
    round_ = 0
    while pending and round_ < max_rounds:
        round_ += 1
        verdicts = check_consistency(
            personas.loc[pending], backend, cache=cache, config=cfg, progress=progress
        )
        for col, verdict_col in _VERDICT_COLUMNS.items():
            personas.loc[pending, col] = verdicts[verdict_col].to_numpy()
        is_rejected = verdicts["consistent"].eq(False).fillna(False).to_numpy(dtype=bool)
        rejected_idx = [i for i, r in zip(pending, is_rejected, strict=True) if r]
        n_checked += len(pending)
        n_rejected += len(rejected_idx)
        n_failed += int((verdicts["check_failure"] != "").sum())
        n_degenerate += int(verdicts["check_failure"].str.startswith(f"{DEGENERATE}:").sum())
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
        for col in _VERDICT_COLUMNS:
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
        degenerate=n_degenerate,
    )
    if enrich:
        personas = enrich_personas(personas, backend, cache=cache, config=cfg, progress=progress)
    return PersonaCompletion(
        personas=personas, rejected=rejected, consistency=consistency, generation=tuple(generation)
    )
