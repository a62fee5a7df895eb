"""Evaluation: how often a model's reply mentions the Pink Elephant, without and with the avoid instruction.

Suppressing Pink Elephants (Castricato et al. 2024, arXiv 2402.07896, Sec. 4) continues held-out dialogues at the
turn where mentioning the Pink Elephant is natural and asks GPT-4 whether the reply mentions it; the mention rate
(lower is better) is reported without the instruction and with it in the system prompt. Here the held-out
dialogues are the cut dialogues of the test entity pairs (their context ends with the user's message before the
unwanted turn), and every reply is judged twice: by the string matcher
(:func:`~persona_lab.elephants.mentions`, explicit names and aliases) and by the LLM judge (``judge.txt``, which
also sees implicit references).

Conventions:

* ``without``: the context alone (the model's own default system prompt, if its chat template has one);
  ``with``: the avoid instruction (``templates/avoid.txt``) as the system message, then the context.
* A reply whose call failed, or that is degenerate (empty, or echoing the instruction), is a recorded failure
  and is left out of the rates; a reply the judge could not judge is left out of the judge's rate and of the
  agreement.
* Rates carry 95 % Wilson score intervals (Wilson 1927), which stay inside [0, 1] and are sensible for the
  small counts of a quick run; an empty cell's rate and interval are NaN.
* Agreement of the two judges: the share of replies on which they agree and Cohen's kappa (Cohen 1960),
  ``(p_o - p_e) / (1 - p_e)``; kappa is NaN when ``p_e == 1`` (both judges constant and equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from persona_lab.agreement import cohen_kappa  # Cohen's kappa of the two judges (one implementation)
from persona_lab.elephants._common import (
    Runner,
    failure_of,
    judge_request,
    judge_verdict,
    placeholder,
    send,
    to_json,
    to_messages,
)
from persona_lab.elephants._mentions import mentions
from persona_lab.elephants._templates import avoid_instruction
from persona_lab.llm import LLMFailure, LLMRequest, Message, degenerate_failure, degenerate_reason

CONDITIONS = ("without", "with")
"""Without and with the avoid instruction in the system prompt."""
JUDGES = ("string", "llm")
"""The string matcher and the LLM judge."""
Z95 = 1.959963984540054

EVAL_COLUMNS = [
    "dialogue_id",
    "pair_id",
    "grey",
    "pink",
    "model",
    "condition",
    "reply",
    "failure",
    "string_mention",
    "judge_mention",
    "judge_failure",
]


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials (NaN, NaN when ``n == 0``).

    Examples:
        >>> [round(x, 4) for x in wilson_interval(1, 4)]
        [0.0456, 0.6994]
    """
    if n == 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def eval_dialogues(dialogues: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """The held-out dialogues: kept (cut) dialogues of the test pairs, at most ``limit``, in table order."""
    held = dialogues[dialogues["kept"].astype(bool) & (dialogues["split"] == "test")]
    return (held if limit is None else held.head(limit)).reset_index(drop=True)


def reply_messages(context: str, pink: str, grey: str, condition: str) -> tuple[Message, ...]:
    """The messages a model answers in one condition: the context, after the avoid instruction for ``with``."""
    messages = to_messages(context)
    if condition == "with":
        return (Message(role="system", content=avoid_instruction(pink, grey)), *messages)
    if condition != "without":
        raise ValueError(f"condition {condition!r}: expected one of {CONDITIONS}")
    return messages


def reply_requests(held: pd.DataFrame, *, max_tokens: int, temperature: float = 0.0) -> list[LLMRequest]:
    """Two requests per held-out dialogue (``without``, ``with``), tagged ``"<dialogue_id>|<condition>"``."""
    return [
        LLMRequest(
            messages=reply_messages(row.context, row.pink, row.grey, condition),
            max_tokens=max_tokens,
            temperature=temperature,
            tag=f"{row.dialogue_id}|{condition}",
        )
        for row in held.itertuples(index=False)
        for condition in CONDITIONS
    ]


def planned_eval_requests(
    n_dialogues: int, exchanges: int, turn_max_tokens: int, max_tokens: int
) -> tuple[list[LLMRequest], list[LLMRequest]]:
    """Dry run: the reply requests and judge requests of ``n_dialogues`` placeholder held-out dialogues cut at
    their last exchange (upper bounds)."""
    turn = placeholder(turn_max_tokens)
    context = []
    for _ in range(exchanges - 1):
        context += [{"role": "user", "content": turn}, {"role": "assistant", "content": turn}]
    context.append({"role": "user", "content": turn})
    held = pd.DataFrame(
        {
            "dialogue_id": [f"d{i}" for i in range(n_dialogues)],
            "context": [to_json(context)] * n_dialogues,
            "pink": ["Pink Elephant"] * n_dialogues,
            "grey": ["Grey Elephant"] * n_dialogues,
        }
    )
    replies = reply_requests(held, max_tokens=max_tokens) if n_dialogues else []
    judges = [judge_request(placeholder(max_tokens), "Pink Elephant") for _ in replies]
    return replies, judges


def evaluate_models(
    held: pd.DataFrame,
    runs: Mapping[str, Runner],
    judge_run: Runner,
    *,
    max_tokens: int,
    temperature: float = 0.0,
) -> pd.DataFrame:
    """Generate each model's replies to the held-out dialogues in both conditions and judge them twice.

    Args:
        held: the held-out dialogues (:func:`eval_dialogues`).
        runs: backend spec -> runner of that model's reply calls.
        judge_run: the runner of the LLM judge.
        max_tokens: output budget of a reply.
        temperature: sampling temperature of the replies.

    Returns:
        The eval table (:data:`EVAL_COLUMNS`): one row per (model, dialogue, condition).
    """
    rows: list[dict[str, Any]] = []
    requests = reply_requests(held, max_tokens=max_tokens, temperature=temperature)
    by_id = {r["dialogue_id"]: r for r in held.to_dict("records")}
    for model, run in runs.items():
        results = send(run, requests, f"elephants: replies of {model}")
        for request, result in zip(requests, results, strict=True):
            dialogue_id, _, condition = request.tag.rpartition("|")
            d = by_id[dialogue_id]
            row = {
                "dialogue_id": dialogue_id,
                "pair_id": d["pair_id"],
                "grey": d["grey"],
                "pink": d["pink"],
                "model": model,
                "condition": condition,
                "reply": None,
                "failure": "",
                "string_mention": None,
                "judge_mention": None,
                "judge_failure": "",
            }
            if isinstance(result, LLMFailure):
                row["failure"] = failure_of(result)[0]
            else:
                row["reply"] = result.text
                instructions = [avoid_instruction(d["pink"], d["grey"])] if condition == "with" else []
                reason = degenerate_reason(result.text, instructions=instructions)
                if reason is not None:
                    row["failure"] = degenerate_failure(reason)
                else:
                    row["string_mention"] = mentions(result.text, d["pink"], list(d["pink_aliases"]))
            rows.append(row)
    out = pd.DataFrame(rows, columns=EVAL_COLUMNS)
    live = out.index[out["failure"] == ""]
    judge_requests = [
        judge_request(
            out.at[i, "reply"], out.at[i, "pink"], list(by_id[out.at[i, "dialogue_id"]]["pink_aliases"])
        )
        for i in live
    ]
    for i, result in zip(live, send(judge_run, judge_requests, "elephants: judge replies"), strict=True):
        verdict, failure = judge_verdict(result)
        out.at[i, "judge_mention"] = verdict
        out.at[i, "judge_failure"] = failure
    return out


def mention_rates(evals: pd.DataFrame, models: Sequence[str] = ()) -> pd.DataFrame:
    """Mention rate per (model, judge, condition) with its Wilson interval.

    Args:
        evals: the eval table (:func:`evaluate_models`).
        models: models to list even when they have no row in ``evals`` (n = 0, rate NaN).

    Returns:
        Columns ``model``, ``judge`` (``string`` / ``llm``), ``condition``, ``n`` (judged replies), ``mentions``,
        ``rate``, ``lo``, ``hi``, ``failures`` (replies left out: failed calls, degenerate replies, failed judge
        calls). Every model of ``evals`` has all four rows, also when it has no judged reply.
    """
    rows = []
    for model in dict.fromkeys([*models, *evals["model"]]):
        mine = evals[evals["model"] == model]
        for judge, column in (("string", "string_mention"), ("llm", "judge_mention")):
            for condition in CONDITIONS:
                cell = mine[mine["condition"] == condition]
                judged = cell[column].dropna().astype(bool)
                k, n = int(judged.sum()), len(judged)
                lo, hi = wilson_interval(k, n)
                rows.append(
                    {
                        "model": model,
                        "judge": judge,
                        "condition": condition,
                        "n": n,
                        "mentions": k,
                        "rate": k / n if n else math.nan,
                        "lo": lo,
                        "hi": hi,
                        "failures": len(cell) - n,
                    }
                )
    return pd.DataFrame(
        rows, columns=["model", "judge", "condition", "n", "mentions", "rate", "lo", "hi", "failures"]
    )


def judge_agreement(evals: pd.DataFrame) -> pd.DataFrame:
    """Agreement of the string matcher and the LLM judge per model, over both conditions.

    Returns:
        Columns ``model``, ``n`` (replies both judged), ``agree`` (share), ``kappa``, ``string_only`` and
        ``llm_only`` (replies only one of them calls a mention).
    """
    rows = []
    for model in dict.fromkeys(evals["model"]):
        both = evals[
            (evals["model"] == model) & evals["string_mention"].notna() & evals["judge_mention"].notna()
        ]
        a = both["string_mention"].astype(bool).tolist()
        b = both["judge_mention"].astype(bool).tolist()
        n = len(a)
        rows.append(
            {
                "model": model,
                "n": n,
                "agree": sum(x == y for x, y in zip(a, b, strict=True)) / n if n else math.nan,
                "kappa": cohen_kappa(a, b),
                "string_only": sum(x and not y for x, y in zip(a, b, strict=True)),
                "llm_only": sum(y and not x for x, y in zip(a, b, strict=True)),
            }
        )
    return pd.DataFrame(rows, columns=["model", "n", "agree", "kappa", "string_only", "llm_only"])
