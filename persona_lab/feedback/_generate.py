"""PERSONA's feedback pairs: original answers, persona critiques and revisions (DPF), role-play verification.

PERSONA (Castricato et al. 2024, Sec. 3.3, Fig. 4, App. B) makes each pair in three steps: the model answers
the prompt without the persona (the original), critiques the original from the persona's point of view, and
revises it following the critique (chosen = revision, rejected = original). The original depends only on the
prompt, so it is generated once per prompt and shared by every persona that has the prompt: the paper's method
makes 3 calls per pair; this one 2 + prompts / pairs (2.012 for the paper's plan), the single-call ablation
1 + prompts / pairs. A model role-playing the persona then chooses between original and revision, shown in a
random recorded order (the paper: 96 % chose the revision).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.config import FeedbackConfig, RunConfig
from persona_lab.dpf import (
    DPFItem,
    Principle,
    critique_and_revise,
    dpf_requests,
    fill,
    load_principle,
    split_sections,
)
from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    LLMFailure,
    LLMRequest,
    LLMResponse,
    Message,
    degenerate_failure,
    degenerate_reason,
    estimate_tokens,
)

Result = LLMResponse | LLMFailure
RunFn = Callable[..., list[Result]]
"""``run(requests, desc=...) -> results`` in order (``RunContext.run_requests``)."""

VERIFY_CHOICES = ("A", "B")
ORDERS = ("original,revision", "revision,original")
"""What answers A and B were, in the column ``order_shown``."""

FEEDBACK_COLUMNS = [
    "persona_id",
    "prompt_id",
    "split",
    "prompt",
    "original",
    "critique",
    "revision",
    "chosen",
    "rejected",
    "failure",
    "order_shown",
    "verification_choice",
    "verification",
    "verification_failure",
    "original_tokens",
    "revision_tokens",
    "critique_raw",
    "revision_raw",
    "provenance",
]
"""Columns of the feedback table (``feedback.parquet``), in order."""


@cache
def load_template(name: str) -> tuple[str, str]:
    """``(system, user)`` of template ``name`` (``original.txt``, ``verify.txt``) next to this module."""
    ref = resources.files("persona_lab.feedback").joinpath(name)
    try:
        text = ref.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PersonaLabError(
            f"{ref}: cannot read the feedback template ({exc}); reinstall persona-lab"
        ) from exc
    return split_sections(text, str(ref))


def template_files() -> tuple[Path, ...]:
    """The feedback templates (for the stage's fingerprint)."""
    here = Path(__file__).resolve().parent
    return (here / "original.txt", here / "verify.txt")


def _config(config: RunConfig | FeedbackConfig) -> FeedbackConfig:
    return config.feedback if isinstance(config, RunConfig) else config


def original_request(
    prompt: str, *, max_tokens: int, temperature: float = 0.0, seed: int = 0, tag: str = ""
) -> LLMRequest:
    """The request for the original answer: the prompt alone, without any persona."""
    system, user = load_template("original.txt")
    return LLMRequest.chat(
        user.replace("{prompt}", prompt),
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        tag=tag,
    )


def verification_request(
    persona: str, prompt: str, first: str, second: str, *, seed: int = 0, tag: str = ""
) -> LLMRequest:
    """The role-play choice between two answers (closed choice A/B, so a local model answers under a grammar)."""
    system, user = load_template("verify.txt")
    values = {"persona": persona, "prompt": prompt, "first": first, "second": second}
    return LLMRequest.chat(
        fill(user, values),
        system=fill(system, values),
        choices=VERIFY_CHOICES,
        max_tokens=2,
        temperature=0.0,
        seed=seed,
        tag=tag,
    )


def order_shown(seed: int, persona_id: str, prompt_id: str) -> str:
    """Which answer is shown first to the verifier: a seeded coin per (persona, prompt), one of :data:`ORDERS`."""
    digest = hashlib.blake2b(f"{seed}\0{persona_id}\0{prompt_id}".encode(), digest_size=1).digest()
    return ORDERS[digest[0] & 1]


def _placeholder(tokens: int) -> str:
    return ("the " * tokens).strip()


@dataclass(frozen=True)
class FeedbackInputs:
    """The plan with the texts it needs: ``plan`` (persona_id, prompt_id, split, prompt, persona)."""

    plan: pd.DataFrame

    @property
    def prompt_ids(self) -> list[str]:
        """The distinct prompts of the plan, in first-use order (one original answer each)."""
        return list(dict.fromkeys(self.plan["prompt_id"]))


def attach_texts(plan: pd.DataFrame, personas: pd.DataFrame, prompts: pd.DataFrame) -> FeedbackInputs:
    """Join the persona text and the prompt text onto a sampling plan.

    Raises:
        PersonaLabError: a persona or prompt of the plan is missing from its table, or a table lacks the
            ``text`` column.
    """
    for name, table, key in (("personas", personas, "persona_id"), ("prompts", prompts, "prompt_id")):
        missing = {key, "text"} - set(table.columns)
        if missing:
            raise PersonaLabError(f"{name} table lacks column(s) {sorted(missing)}; rerun the {name} stage")
    persona_text = dict(zip(personas["persona_id"].astype(str), personas["text"].astype(str), strict=True))
    prompt_text = dict(zip(prompts["prompt_id"].astype(str), prompts["text"].astype(str), strict=True))
    out = plan.copy()
    unknown = sorted(set(out["persona_id"]) - set(persona_text))
    if unknown:
        raise PersonaLabError(f"feedback plan: persona {unknown[0]!r} is not in the personas table")
    unknown = sorted(set(out["prompt_id"]) - set(prompt_text))
    if unknown:
        raise PersonaLabError(f"feedback plan: prompt {unknown[0]!r} is not in the prompts table")
    out["persona"] = out["persona_id"].map(persona_text)
    out["prompt"] = out["prompt_id"].map(prompt_text)
    return FeedbackInputs(out)


def _item(row: dict[str, Any], original: str) -> DPFItem:
    return DPFItem(
        id=f"{row['persona_id']}/{row['prompt_id']}",
        context=(Message(role="user", content=str(row["prompt"])),),
        original=original,
        variables={"persona": str(row["persona"])},
    )


def plan_requests(
    inputs: FeedbackInputs, config: RunConfig, *, principle: Principle | None = None
) -> dict[str, list[LLMRequest]]:
    """Every request the feedback stage would send, by role: ``originals`` (one per prompt), ``dpf``
    (critiques and revisions, or single calls) and ``verification``. Calls nothing.

    Placeholders of the configured ``max_tokens`` length stand in for answers not written yet, so the token
    counts bound the real ones.
    """
    cfg = config.feedback
    principle = principle or load_principle("persona")
    rows = inputs.plan.to_dict("records")
    by_prompt = dict(zip(inputs.plan["prompt_id"], inputs.plan["prompt"], strict=False))
    originals = [
        original_request(
            by_prompt[p],
            max_tokens=cfg.original_max_tokens,
            temperature=config.llm.temperature,
            seed=config.seed,
            tag=p,
        )
        for p in inputs.prompt_ids
    ]
    answer = _placeholder(cfg.original_max_tokens)
    items = [_item(r, answer) for r in rows]
    dpf = dpf_requests(
        items,
        principle,
        single_call=cfg.single_call,
        rounds=cfg.rounds,
        max_tokens=(cfg.critique_max_tokens, cfg.revision_max_tokens),
        temperature=config.llm.temperature,
        seed=config.seed,
    )
    revision = _placeholder(cfg.revision_max_tokens)
    verification = (
        [
            verification_request(str(r["persona"]), str(r["prompt"]), answer, revision, seed=config.seed)
            for r in rows
        ]
        if cfg.verify
        else []
    )
    return {"originals": originals, "dpf": dpf, "verification": verification}


def calls_per_pair(n_prompts: int, n_pairs: int, *, single_call: bool = False, rounds: int = 1) -> float:
    """Generation calls per pair of the plan: one original per prompt plus (2 or 1) x rounds per pair.

    >>> round(calls_per_pair(3868, 317_200), 3)
    2.012
    """
    if not n_pairs:
        return float("nan")
    return (1 if single_call else 2) * rounds + n_prompts / n_pairs


def check_original(text: str, prompt: str) -> str:
    """``""`` or why an original answer is unusable: empty, echoing its template, or repeating the prompt (the
    same or nearly the same words; quoting the prompt inside a real answer is fine)."""
    system, _ = load_template("original.txt")
    reason = degenerate_reason(text, instructions=(system,))
    if reason is None and degenerate_reason(text, siblings=(prompt,)) is not None:
        reason = "repeats the prompt"
    return "" if reason is None else degenerate_failure(f"original {reason}")


def generate_feedback(
    inputs: FeedbackInputs,
    config: RunConfig,
    run: RunFn,
    *,
    verify_run: RunFn | None = None,
    principle: Principle | None = None,
) -> pd.DataFrame:
    """Make the feedback pairs of a plan: originals, critiques and revisions, verification.

    Args:
        inputs: the plan with persona and prompt texts (:func:`attach_texts`).
        config: the run configuration (``feedback`` section, ``llm.temperature``, ``seed``).
        run: sends requests (``run(requests, desc=...)``), e.g. ``RunContext.run_requests``.
        verify_run: sends the verification requests (default ``run``; another backend for ``feedback.verifier``).
        principle: the DPF principle (default ``load_principle("persona")``).

    Returns:
        The feedback table, one row per planned pair in plan order, columns :data:`FEEDBACK_COLUMNS`. A row
        without a pair has ``failure`` (``"original ..."``, ``"critique call ..."``, ``"unparseable: ..."``,
        ``"degenerate: ..."``, ``"identical: ..."``) and keeps every raw text; ``chosen``/``rejected`` are set
        only for pairs. ``verification`` is ``"revision"``/``"original"`` (``None`` when not verified, with
        ``verification_failure`` when the call failed); token lengths use ``persona_lab.llm.estimate_tokens``.
    """
    cfg = config.feedback
    principle = principle or load_principle("persona")
    verify_run = verify_run or run
    plan = inputs.plan.reset_index(drop=True)
    rows = plan.to_dict("records")
    by_prompt = dict(zip(plan["prompt_id"], plan["prompt"], strict=False))
    prompt_ids = inputs.prompt_ids
    requests = [
        original_request(
            by_prompt[p],
            max_tokens=cfg.original_max_tokens,
            temperature=config.llm.temperature,
            seed=config.seed,
            tag=p,
        )
        for p in prompt_ids
    ]
    results = run(requests, desc="feedback originals") if requests else []
    originals: dict[str, tuple[str, str, str]] = {}  # prompt_id -> (text, failure, request key)
    for pid, result in zip(prompt_ids, results, strict=True):
        if isinstance(result, LLMFailure):
            originals[pid] = ("", f"original call {result.kind}: {result.reason}", result.key)
        else:
            text = result.text.strip()
            originals[pid] = (text, check_original(text, by_prompt[pid]), result.key)
    good = [i for i, r in enumerate(rows) if not originals[r["prompt_id"]][1]]
    items = [_item(rows[i], originals[rows[i]["prompt_id"]][0]) for i in good]
    dpf = critique_and_revise(
        items,
        principle,
        run,
        single_call=cfg.single_call,
        rounds=cfg.rounds,
        max_tokens=(cfg.critique_max_tokens, cfg.revision_max_tokens),
        temperature=config.llm.temperature,
        seed=config.seed,
        desc="feedback",
    )
    by_row = dict(zip(good, dpf, strict=True))
    orders = [order_shown(config.seed, r["persona_id"], r["prompt_id"]) for r in rows]
    pairs = [i for i in good if by_row[i].ok]
    verdicts: dict[int, tuple[str | None, str | None, str]] = {}
    if cfg.verify and pairs:
        vreqs = []
        for i in pairs:
            res, row = by_row[i], rows[i]
            first, second = (
                (res.rejected, res.chosen) if orders[i] == ORDERS[0] else (res.chosen, res.rejected)
            )
            vreqs.append(
                verification_request(
                    str(row["persona"]),
                    str(row["prompt"]),
                    str(first),
                    str(second),
                    seed=config.seed,
                    tag=f"{row['persona_id']}/{row['prompt_id']}/verify",
                )
            )
        for i, result in zip(pairs, verify_run(vreqs, desc="feedback verification"), strict=True):
            if isinstance(result, LLMFailure):
                verdicts[i] = (None, None, f"{result.kind}: {result.reason}")
                continue
            letter = result.choice or result.text.strip()[:1].upper()
            if letter not in VERIFY_CHOICES:
                verdicts[i] = (
                    None,
                    None,
                    f"unparseable: answer outside the choices A/B: {result.text[:60]!r}",
                )
                continue
            shown = orders[i].split(",")
            verdicts[i] = (letter, shown[VERIFY_CHOICES.index(letter)], "")
    out: dict[str, list[Any]] = {c: [] for c in FEEDBACK_COLUMNS}
    for i, row in enumerate(rows):
        text, o_failure, o_key = originals[row["prompt_id"]]
        pair = by_row.get(i)
        shown_letter, verdict, v_failure = verdicts.get(i, (None, None, ""))
        provenance: dict[str, Any] = {"original_key": o_key}
        if pair is not None:
            provenance |= pair.provenance
        values = {
            "persona_id": row["persona_id"],
            "prompt_id": row["prompt_id"],
            "split": row["split"],
            "prompt": row["prompt"],
            "original": text or None,
            "critique": pair.critique if pair else None,
            "revision": pair.revision if pair else None,
            "chosen": pair.chosen if pair else None,
            "rejected": pair.rejected if pair else None,
            "failure": o_failure or (pair.failure if pair else ""),
            "order_shown": orders[i],
            "verification_choice": shown_letter,
            "verification": verdict,
            "verification_failure": v_failure,
            "original_tokens": estimate_tokens(text) if text else None,
            "revision_tokens": estimate_tokens(pair.revision) if pair and pair.revision else None,
            "critique_raw": pair.critique_raw if pair else "",
            "revision_raw": pair.revision_raw if pair else "",
            "provenance": json.dumps(provenance, sort_keys=True),
        }
        for column in FEEDBACK_COLUMNS:
            out[column].append(values[column])
    table = pd.DataFrame(out, columns=FEEDBACK_COLUMNS)
    for column in ("original_tokens", "revision_tokens"):
        table[column] = table[column].astype("Int64")
    return table


def failure_counts(feedback: pd.DataFrame, *, detail: bool = False) -> dict[str, int]:
    """Rows without a pair by failure class (the text before the first ``:``: ``degenerate``, ``identical``,
    ``unparseable``, ``critique call refusal`` ...), most frequent first; with ``detail``, by the whole reason
    (cut at 100 characters, so reasons that quote an answer still group)."""
    failed = feedback.loc[feedback["failure"].astype(str) != "", "failure"].astype(str)
    keys = failed.str.slice(0, 100) if detail else failed.str.split(":").str[0]
    return {str(k): int(v) for k, v in keys.value_counts().items()}


def select_personas(personas: pd.DataFrame, n: int | None) -> list[str]:
    """The personas that get feedback pairs: the first ``n`` of the table (``None``: all)."""
    ids = [str(p) for p in personas["persona_id"]]
    return ids if n is None else ids[:n]


def prompt_pools(prompts: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(train, heldout)`` prompt ids of the prompts table: kept prompts with split ``train`` / ``heldout``."""
    missing = {"prompt_id", "split"} - set(prompts.columns)
    if missing:
        raise PersonaLabError(f"prompts table lacks column(s) {sorted(missing)}; rerun the prompts stage")
    kept = prompts[prompts["kept"].fillna(False).astype(bool)] if "kept" in prompts.columns else prompts
    split = kept["split"].astype(object)
    return (
        kept.loc[split == "train", "prompt_id"].astype(str).tolist(),
        kept.loc[split == "heldout", "prompt_id"].astype(str).tolist(),
    )


def pair_sizes(config: RunConfig | FeedbackConfig) -> tuple[int, int, int]:
    """The configured pairs per persona: (train, test_seen, test_unseen)."""
    cfg = _config(config)
    return cfg.pairs_train, cfg.pairs_test_seen, cfg.pairs_test_unseen


def describe_plan(plan: pd.DataFrame, config: RunConfig | FeedbackConfig) -> dict[str, Any]:
    """Counts of a sampling plan: pairs, per split, per persona, distinct prompts, calls per pair."""
    cfg = _config(config)
    counts = plan["split"].value_counts()
    n_prompts = int(plan["prompt_id"].nunique())
    per_persona = plan.groupby("persona_id").size()
    return {
        "pairs": len(plan),
        "by_split": {s: int(counts.get(s, 0)) for s in ("train", "test_seen", "test_unseen")},
        "test": int(counts.get("test_seen", 0) + counts.get("test_unseen", 0)),
        "personas": int(plan["persona_id"].nunique()),
        "pairs_per_persona": int(per_persona.iloc[0]) if len(per_persona) else 0,
        "prompts": n_prompts,
        "calls_per_pair": calls_per_pair(
            n_prompts, len(plan), single_call=cfg.single_call, rounds=cfg.rounds
        ),
    }
