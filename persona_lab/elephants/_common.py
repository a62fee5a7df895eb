"""What every step of the Pink Elephants pipeline shares: the runner callable, failures kept with their raw text,
the mention judge and the JSON form of a dialogue."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from persona_lab.elephants._templates import fill, template_sections
from persona_lab.llm import LLMFailure, LLMRequest, LLMResponse, Message

Result = LLMResponse | LLMFailure
Runner = Callable[..., list[Result]]
"""Sends requests and returns one result per request in order: ``run(requests, desc=...)`` (the DPF engine's
convention). The stage passes ``RunContext.run_requests``; a notebook :func:`make_runner`."""

JUDGE_CHOICES = ("yes", "no")
JUDGE_MAX_TOKENS = 2


def make_runner(
    backend: Any, *, cache: Any = None, config: Any = None, progress: bool | str = False
) -> Runner:
    """A :data:`Runner` over ``persona_lab.llm.run_requests`` with one backend and cache (for notebooks)."""
    from persona_lab.llm import run_requests

    def run(requests: Sequence[LLMRequest], desc: str = "") -> list[Result]:
        if not requests:
            return []
        return run_requests(requests, backend, cache=cache, config=config, progress=progress, desc=desc)

    return run


def send(run: Runner, requests: Sequence[LLMRequest], desc: str) -> list[Result]:
    """``run(requests, desc=desc)``, or nothing when there is nothing to send."""
    return list(run(requests, desc=desc)) if requests else []


def failure_of(result: Result) -> tuple[str, str]:
    """``(failure, raw)`` of a failed call: ``"<kind>: <reason>"`` and the reason, which holds the raw answer
    of an unparseable reply (the backends quote it)."""
    assert isinstance(result, LLMFailure)
    return f"{result.kind}: {result.reason}", result.reason


def aliases_note(aliases: Sequence[str]) -> str:
    """`` (also called A, B)`` or ``""``, for prompts that name an entity."""
    names = [a for a in aliases if a]
    return f" (also called {', '.join(names)})" if names else ""


def judge_request(reply: str, pink: str, aliases: Sequence[str] = (), *, tag: str = "") -> LLMRequest:
    """The mention judge for one reply: does it mention or clearly refer to ``pink``? (closed choice yes/no).

    The paper decides mentions with GPT-4 (Sec. 4); the template ``judge.txt`` asks for explicit names, other
    names and things that belong to the entity (a product, a person, a slogan), which a string match misses.
    """
    system, user = template_sections("judge.txt")
    text = fill(user, {"pink": pink, "aliases": aliases_note(aliases), "reply": reply})
    return LLMRequest.chat(text, system=system, choices=JUDGE_CHOICES, max_tokens=JUDGE_MAX_TOKENS, tag=tag)


def judge_verdict(result: Result) -> tuple[bool | None, str]:
    """``(mentions, failure)`` of a judge call: ``True``/``False``, or ``None`` and why the call failed."""
    if isinstance(result, LLMFailure):
        return None, failure_of(result)[0]
    choice = result.choice
    if choice is None:
        words = result.text.strip().lower().split()
        choice = words[0].strip(".,!:;\"'*") if words else ""
    if choice not in JUDGE_CHOICES:
        return None, f"unparseable: judge answered {result.text[:60]!r}, not yes or no"
    return choice == "yes", ""


def to_messages(turns: Sequence[dict[str, str]] | str) -> tuple[Message, ...]:
    """Chat messages from a list of ``{"role", "content"}`` dicts or its JSON text."""
    items = json.loads(turns) if isinstance(turns, str) else turns
    return tuple(Message(role=t["role"], content=t["content"]) for t in items)


def to_json(turns: Sequence[dict[str, str]] | Sequence[Message]) -> str:
    """The JSON text of a list of messages (how dialogues are stored in the tables)."""
    items = [
        t.model_dump() if isinstance(t, Message) else {"role": t["role"], "content": t["content"]}
        for t in turns
    ]
    return json.dumps(items, ensure_ascii=False)


def placeholder(n_tokens: int, word: str = "word") -> str:
    """A text of about ``n_tokens`` tokens, standing in for an answer not made yet in a dry-run plan."""
    return " ".join([word] * max(1, n_tokens))


def missing(value: Any) -> bool:
    """``None`` or NaN: how a missing string reads back from a table (pandas 3 stores missing text as NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def with_none(df: Any, columns: Sequence[str] = ("dropped_at", "split")) -> Any:
    """``df`` with the missing values of ``columns`` as ``None`` in object columns (``dropped_at is None``)."""
    for column in columns:
        if column in df.columns:
            values = df[column].astype(object)
            df[column] = values.where(values.notna(), None)
    return df


def as_list(value: Any) -> list[Any]:
    """A list from a list, a tuple or an array read back from parquet; ``[]`` for ``None`` or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value)
