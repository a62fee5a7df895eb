"""Conversation plans, their dialogues, and the cut at the assistant's first mention of the Pink Elephant.

Suppressing Pink Elephants (Castricato et al. 2024, arXiv 2402.07896, Sec. 3): per entity pair an LLM writes plans
for conversations that start on the Grey Elephant and drift until mentioning the Pink Elephant is the natural next
step; each plan is unrolled into a user/assistant dialogue, which is cut at the assistant's first mention of the
Pink Elephant (the unwanted turn). Every plan and dialogue stays in its table with the first step that dropped it
(``dropped_at``, ``None`` when kept) and, for a failed call, the raw text:

* plans: ``llm_failure`` (failed or unparseable call), ``degenerate`` (a step echoes the instruction or repeats
  another step), ``too_short`` (fewer than two steps).
* dialogues: ``llm_failure``, ``degenerate`` (a message echoes the instruction or repeats another message),
  ``too_short`` (fewer than two exchanges), then the cut: ``no_mention`` (no assistant turn mentions the Pink
  Elephant) and ``first_turn`` (the first assistant turn already does, leaving no conversation to drift).

The cut finds the first assistant turn that :func:`~persona_lab.elephants.mentions` the Pink Elephant (or one of
its aliases). With ``judge`` on, the LLM judge also reads every assistant turn before it (all of them when none
matches), so an implicit mention (a product of the pink brand) cuts earlier; ``cut_by`` records which decided. The
context is every message before the unwanted turn (it ends with the user's message), the unwanted turn the
``original`` that DPF critiques and revises.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from persona_lab.elephants._common import (
    Runner,
    failure_of,
    judge_request,
    judge_verdict,
    missing,
    placeholder,
    send,
    to_json,
    with_none,
)
from persona_lab.elephants._mentions import mentions
from persona_lab.elephants._templates import fill, template_sections
from persona_lab.llm import LLMFailure, LLMRequest, degenerate_failure, degenerate_fields

STEP_TOKENS = 40
"""Output tokens one plan step takes in JSON."""

PLAN_COLUMNS = [
    "plan_id",
    "pair_id",
    "plan_index",
    "domain",
    "grey",
    "pink",
    "split",
    "steps",
    "kept",
    "dropped_at",
    "failure",
    "raw",
]
DIALOGUE_COLUMNS = [
    "dialogue_id",
    "plan_id",
    "pair_id",
    "domain",
    "grey",
    "pink",
    "pink_aliases",
    "split",
    "turns",
    "n_exchanges",
    "cut_exchange",
    "cut_by",
    "context",
    "unwanted",
    "judge_calls",
    "judge_failures",
    "kept",
    "dropped_at",
    "failure",
    "raw",
]

_STEP = "What the user asks or says in this exchange, in one short sentence."
_USER = "The user's message."
_ASSISTANT = "The assistant's reply."


def plan_schema(n: int) -> dict[str, Any]:
    """``{"steps": [str, ...]}`` with at most ``n`` steps."""
    return {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": {"type": "string", "description": _STEP}, "maxItems": n}
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


def dialogue_schema(n: int) -> dict[str, Any]:
    """``{"exchanges": [{"user": str, "assistant": str}, ...]}`` with at most ``n`` exchanges."""
    exchange = {
        "type": "object",
        "properties": {
            "user": {"type": "string", "description": _USER},
            "assistant": {"type": "string", "description": _ASSISTANT},
        },
        "required": ["user", "assistant"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"exchanges": {"type": "array", "items": exchange, "maxItems": n}},
        "required": ["exchanges"],
        "additionalProperties": False,
    }


# -- plans ------------------------------------------------------------------------------------------------------
def plan_requests(
    pairs: pd.DataFrame, *, plans_per_pair: int, exchanges: int, temperature: float, seed: int = 0
) -> list[LLMRequest]:
    """``plans_per_pair`` requests per kept pair (``plan.txt``), differing by seed; tagged ``"<pair_id>/<k>"``."""
    system, user = template_sections("plan.txt")
    out = []
    for row in pairs.itertuples(index=False):
        text = fill(user, {"n": str(exchanges), "domain": row.domain, "grey": row.grey, "pink": row.pink})
        for k in range(plans_per_pair):
            out.append(
                LLMRequest.chat(
                    text,
                    system=system,
                    json_schema=plan_schema(exchanges),
                    max_tokens=exchanges * STEP_TOKENS + 16,
                    temperature=temperature,
                    seed=seed + k,
                    tag=f"{row.pair_id}/{k}",
                )
            )
    return out


def parse_plans(pairs: pd.DataFrame, requests: Sequence[LLMRequest], results: Sequence[Any]) -> pd.DataFrame:
    """The plans table from the answers to :func:`plan_requests` (one row per request)."""
    by_id = {r["pair_id"]: r for r in pairs.to_dict("records")}
    instructions = (*template_sections("plan.txt"), _STEP)
    rows = []
    for request, result in zip(requests, results, strict=True):
        pair_id, _, k = request.tag.rpartition("/")
        pair = by_id[pair_id]
        row = {
            "plan_id": f"{pair_id}/plan{int(k):02d}",
            "pair_id": pair_id,
            "plan_index": int(k),
            "domain": pair["domain"],
            "grey": pair["grey"],
            "pink": pair["pink"],
            "split": pair["split"],
            "steps": [],
            "dropped_at": None,
            "failure": "",
            "raw": "",
        }
        if isinstance(result, LLMFailure):
            row["failure"], row["raw"] = failure_of(result)
            row["dropped_at"] = "llm_failure"
        else:
            row["raw"] = result.text
            steps = result.parsed.get("steps") if isinstance(result.parsed, dict) else None
            if not isinstance(steps, list):
                row["dropped_at"], row["failure"] = (
                    "llm_failure",
                    "unparseable: the answer has no list of steps",
                )
            else:
                steps = [str(s).strip() for s in steps if str(s).strip()]
                row["steps"] = steps
                bad = degenerate_fields(
                    {f"step {i + 1}": s for i, s in enumerate(steps)}, instructions=instructions
                )
                if bad:
                    row["dropped_at"], row["failure"] = "degenerate", degenerate_failure(bad)
                elif len(steps) < 2:
                    row["dropped_at"], row["failure"] = (
                        "too_short",
                        f"{len(steps)} step(s); a plan needs at least 2",
                    )
        rows.append(row)
    out = with_none(pd.DataFrame(rows, columns=PLAN_COLUMNS))
    out["kept"] = out["dropped_at"].isna()
    return out


def generate_plans(
    pairs: pd.DataFrame,
    run: Runner,
    *,
    plans_per_pair: int,
    exchanges: int,
    temperature: float,
    seed: int = 0,
) -> pd.DataFrame:
    """Ask for ``plans_per_pair`` plans per kept pair and parse them (module docstring)."""
    requests = plan_requests(
        pairs, plans_per_pair=plans_per_pair, exchanges=exchanges, temperature=temperature, seed=seed
    )
    return parse_plans(pairs, requests, send(run, requests, "elephants: conversation plans"))


def plan_text(steps: Sequence[str]) -> str:
    """A plan as numbered lines: ``1. ...``."""
    return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, start=1))


# -- dialogues --------------------------------------------------------------------------------------------------
def dialogue_request(
    steps: Sequence[str], tag: str, *, turn_max_tokens: int, temperature: float, seed: int = 0
) -> LLMRequest:
    """Unroll one plan into a dialogue (``dialogue.txt``), one exchange per step."""
    system, user = template_sections("dialogue.txt")
    return LLMRequest.chat(
        fill(user, {"plan": plan_text(steps)}),
        system=system,
        json_schema=dialogue_schema(len(steps)),
        max_tokens=2 * len(steps) * turn_max_tokens + 16,
        temperature=temperature,
        seed=seed,
        tag=tag,
    )


def dialogue_requests(
    plans: pd.DataFrame, *, turn_max_tokens: int, temperature: float, seed: int = 0
) -> list[LLMRequest]:
    """One request per kept plan, tagged with its ``plan_id``."""
    kept = plans[plans["kept"].astype(bool)]
    return [
        dialogue_request(
            list(r.steps), r.plan_id, turn_max_tokens=turn_max_tokens, temperature=temperature, seed=seed
        )
        for r in kept.itertuples(index=False)
    ]


def parse_dialogues(
    plans: pd.DataFrame, pairs: pd.DataFrame, requests: Sequence[LLMRequest], results: Sequence[Any]
) -> pd.DataFrame:
    """The dialogues table (before the cut) from the answers to :func:`dialogue_requests`."""
    plan_by_id = {r["plan_id"]: r for r in plans.to_dict("records")}
    aliases = {r["pair_id"]: list(r["pink_aliases"]) for r in pairs.to_dict("records")}
    instructions = (*template_sections("dialogue.txt"), _USER, _ASSISTANT)
    rows = []
    for request, result in zip(requests, results, strict=True):
        plan = plan_by_id[request.tag]
        row: dict[str, Any] = {c: None for c in DIALOGUE_COLUMNS}
        row.update(
            dialogue_id=plan["plan_id"].replace("/plan", "/dialogue"),
            plan_id=plan["plan_id"],
            pair_id=plan["pair_id"],
            domain=plan["domain"],
            grey=plan["grey"],
            pink=plan["pink"],
            pink_aliases=aliases.get(plan["pair_id"], []),
            split=plan["split"],
            turns="[]",
            n_exchanges=0,
            cut_exchange=-1,
            judge_calls=0,
            judge_failures=0,
            failure="",
            raw="",
        )
        if isinstance(result, LLMFailure):
            row["failure"], row["raw"] = failure_of(result)
            row["dropped_at"] = "llm_failure"
            rows.append(row)
            continue
        row["raw"] = result.text
        exchanges = result.parsed.get("exchanges") if isinstance(result.parsed, dict) else None
        if not isinstance(exchanges, list):
            row["dropped_at"], row["failure"] = (
                "llm_failure",
                "unparseable: the answer has no list of exchanges",
            )
            rows.append(row)
            continue
        turns = []
        for ex in exchanges:
            turns.append({"role": "user", "content": str(ex.get("user", "")).strip()})
            turns.append({"role": "assistant", "content": str(ex.get("assistant", "")).strip()})
        row["turns"] = to_json(turns)
        row["n_exchanges"] = len(exchanges)
        fields = {f"{t['role']} {i // 2 + 1}": t["content"] for i, t in enumerate(turns)}
        bad = degenerate_fields(fields, instructions=instructions)
        if bad:
            row["dropped_at"], row["failure"] = "degenerate", degenerate_failure(bad)
        elif len(exchanges) < 2:
            row["dropped_at"], row["failure"] = (
                "too_short",
                f"{len(exchanges)} exchange(s); a dialogue needs 2",
            )
        rows.append(row)
    return with_none(pd.DataFrame(rows, columns=DIALOGUE_COLUMNS), ("dropped_at", "split", "cut_by"))


def generate_dialogues(
    plans: pd.DataFrame,
    pairs: pd.DataFrame,
    run: Runner,
    *,
    turn_max_tokens: int,
    temperature: float,
    seed: int = 0,
) -> pd.DataFrame:
    """Unroll every kept plan into a dialogue and parse it (before the cut)."""
    requests = dialogue_requests(plans, turn_max_tokens=turn_max_tokens, temperature=temperature, seed=seed)
    return parse_dialogues(plans, pairs, requests, send(run, requests, "elephants: dialogues"))


# -- the cut ----------------------------------------------------------------------------------------------------
def _assistant_turns(turns_json: str) -> list[str]:
    return [t["content"] for t in json.loads(turns_json) if t["role"] == "assistant"]


def first_string_mention(turns_json: str, pink: str, aliases: Sequence[str]) -> int:
    """Index (0-based exchange) of the first assistant turn that names ``pink`` or an alias, or -1."""
    for i, text in enumerate(_assistant_turns(turns_json)):
        if mentions(text, pink, aliases):
            return i
    return -1


def cut_judge_requests(dialogues: pd.DataFrame) -> list[LLMRequest]:
    """Judge requests for the assistant turns before each live dialogue's first string match (every assistant
    turn when none matches), tagged ``"<dialogue_id>/<exchange>"``."""
    out = []
    for row in dialogues[dialogues["dropped_at"].isna()].itertuples(index=False):
        first = first_string_mention(row.turns, row.pink, list(row.pink_aliases))
        turns = _assistant_turns(row.turns)
        for i, text in enumerate(turns[: first if first >= 0 else len(turns)]):
            out.append(judge_request(text, row.pink, list(row.pink_aliases), tag=f"{row.dialogue_id}/{i}"))
    return out


def cut_dialogues(dialogues: pd.DataFrame, run: Runner | None = None, *, judge: bool = False) -> pd.DataFrame:
    """Cut every live dialogue at the assistant's first mention of the Pink Elephant (module docstring).

    Args:
        dialogues: the output of :func:`generate_dialogues`.
        run: the runner of the judge calls (needed when ``judge``).
        judge: ask the LLM judge about the assistant turns before the first string match.

    Returns:
        A copy with ``cut_exchange``, ``cut_by`` (``"string"`` or ``"judge"``), ``context`` (JSON messages before
        the unwanted turn), ``unwanted``, ``judge_calls``, ``judge_failures``, ``kept`` and ``dropped_at`` set.
    """
    out = dialogues.copy().reset_index(drop=True)
    verdicts: dict[str, list[tuple[int, bool | None]]] = {}
    if judge:
        if run is None:
            raise ValueError("cut_dialogues(judge=True) needs a runner for the judge calls")
        requests = cut_judge_requests(out)
        for request, result in zip(
            requests, send(run, requests, "elephants: judge implicit mentions"), strict=True
        ):
            dialogue_id, _, i = request.tag.rpartition("/")
            verdicts.setdefault(dialogue_id, []).append((int(i), judge_verdict(result)[0]))
    records = out.to_dict("records")
    for rec in records:
        rec["kept"] = False
        if not missing(rec["dropped_at"]):
            continue
        first = first_string_mention(rec["turns"], rec["pink"], list(rec["pink_aliases"]))
        cut_by = "string" if first >= 0 else None
        judged = verdicts.get(rec["dialogue_id"], [])
        rec["judge_calls"] = len(judged)
        rec["judge_failures"] = sum(v is None for _, v in judged)
        implicit = [i for i, v in judged if v]
        if implicit and (first < 0 or min(implicit) < first):
            first, cut_by = min(implicit), "judge"
        rec["cut_exchange"], rec["cut_by"] = first, cut_by
        if first < 0:
            rec["dropped_at"], rec["failure"] = "no_mention", f"no assistant turn mentions {rec['pink']!r}"
            continue
        if first == 0:
            rec["dropped_at"] = "first_turn"
            rec["failure"] = f"the first assistant turn already mentions {rec['pink']!r}"
            continue
        turns = json.loads(rec["turns"])
        rec["context"] = to_json(turns[: 2 * first + 1])
        rec["unwanted"] = turns[2 * first + 1]["content"]
        rec["kept"] = True
    return with_none(pd.DataFrame(records, columns=DIALOGUE_COLUMNS), ("dropped_at", "split", "cut_by"))


# -- dry-run plans ----------------------------------------------------------------------------------------------
def placeholder_plans(pairs: pd.DataFrame, *, plans_per_pair: int, exchanges: int) -> pd.DataFrame:
    """Plans of ``exchanges`` placeholder steps of :data:`STEP_TOKENS` tokens for every kept pair (dry run)."""
    rows = []
    for pair in pairs.itertuples(index=False):
        for k in range(plans_per_pair):
            rows.append(
                {
                    "plan_id": f"{pair.pair_id}/plan{k:02d}",
                    "pair_id": pair.pair_id,
                    "plan_index": k,
                    "domain": pair.domain,
                    "grey": pair.grey,
                    "pink": pair.pink,
                    "split": pair.split,
                    "steps": [placeholder(STEP_TOKENS - 8)] * exchanges,
                    "kept": True,
                    "dropped_at": None,
                    "failure": "",
                    "raw": "",
                }
            )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)
