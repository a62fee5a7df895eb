"""Direct Principle Feedback: critique a response under a principle, revise it, keep (revision > original).

Castricato et al. 2024 (Suppressing Pink Elephants with Direct Principle Feedback, arXiv 2402.07896, Sec. 3)
skip RLAIF's ranking step: a model critiques a response under a principle and revises it, and the pair
(chosen = revision, rejected = original) goes straight to DPO. PERSONA (Castricato et al. 2024, Sec. 3.3)
makes its 317,200 persona-specific pairs the same way, with the persona as the principle.

The engine is principle-agnostic: an item is the conversation before the response, the response and the
principle's variables. By default it makes two calls per item (critique, then revision given the critique);
ablations, off by default: ``single_call=True`` asks for critique and revision in one answer, and
``rounds=k`` critiques and revises the previous revision again, ``k`` times (the pair keeps the original as
rejected and the last revision as chosen).

A result without a good pair carries ``failure``: the call failed (``"<kind>: <reason>"``), the answer could not
be parsed (``"unparseable: ..."``), the degenerate-answer check rejected it (``"degenerate: ..."``, e.g. the
critique echoes its template), the revision repeats the original (``"identical: ..."``), or it still names a
forbidden value (``"forbidden: ..."``, Pink Elephants). The raw texts are always kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from persona_lab.dpf._parse import Critique, parse_critique, parse_revision, parse_single
from persona_lab.dpf._principle import Principle, fill
from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    LLMFailure,
    LLMRequest,
    LLMResponse,
    Message,
    degenerate_failure,
    degenerate_reason,
)

_WORD = re.compile(r"\w+")


def words(text: str) -> tuple[str, ...]:
    """A text as the degenerate-answer check compares it: case-folded runs of letters and digits."""
    return tuple(_WORD.findall(str(text).casefold()))


Result = LLMResponse | LLMFailure
RunFn = Callable[..., list[Result]]
"""``run(requests, desc=...) -> results in order`` (e.g. ``RunContext.run_requests``)."""

PLACEHOLDER_WORD = "the "
"""One token in every tokenizer we price with (and four characters, the fallback's token); the dry run's
revision requests carry a placeholder critique of ``critique_max_tokens`` of them."""


@dataclass(frozen=True)
class DPFItem:
    """One response to critique and revise.

    Attributes:
        id: a stable identifier, e.g. ``"persona_id/prompt_id"`` (request tags, result ids).
        context: the conversation before the response (the user prompt, or a dialogue).
        original: the response to critique and revise.
        variables: the principle's variables (``persona`` text; ``pink`` and ``grey`` entities).
    """

    id: str
    context: tuple[Message, ...]
    original: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DPFResult:
    """The critique, the revision and the preference pair of one item.

    Attributes:
        id: the item's id.
        critique: the parsed critique (``EVALUATION: ... SUGGESTIONS: ...``), ``None`` when it failed.
        revision: the parsed revision, ``None`` when it failed (or was never asked for).
        chosen: the revision when the pair is good, else ``None``.
        rejected: the original when the pair is good, else ``None``.
        failure: ``""`` for a good pair; else why there is none (see the module docstring).
        critique_raw: the critique call's whole answer (``""`` when the call failed).
        revision_raw: the revision call's whole answer (``""`` when not made or failed).
        provenance: backend, model, request keys, principle and fingerprint, calls and, with ``rounds > 1``,
            every round's critique and revision.
    """

    id: str
    critique: str | None
    revision: str | None
    chosen: str | None
    rejected: str | None
    failure: str
    critique_raw: str
    revision_raw: str
    provenance: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the result is a preference pair."""
        return not self.failure


def render_conversation(context: Sequence[Message]) -> str:
    """The conversation as ``USER: ...`` / ``ASSISTANT: ...`` paragraphs (system messages as ``SYSTEM:``)."""
    return "\n\n".join(f"{m.role.upper()}: {m.content.strip()}" for m in context)


def _values(item: DPFItem, principle: Principle) -> dict[str, str]:
    missing = [v for v in principle.variables if v not in item.variables]
    if missing:
        raise PersonaLabError(
            f"DPF item {item.id!r}: principle {principle.name!r} needs the variable(s) {missing}; "
            f"the item gives {sorted(item.variables)}"
        )
    return {v: str(item.variables[v]) for v in principle.variables}


def _request(
    principle: Principle,
    which: str,
    item: DPFItem,
    original: str,
    *,
    critique: str = "",
    max_tokens: int,
    temperature: float,
    seed: int,
) -> LLMRequest:
    system, user = principle.sections(which)
    values = {"conversation": render_conversation(item.context), "original": original, "critique": critique}
    values |= _values(item, principle)
    filled_system = fill(system, values)
    filled_user = fill(user, values)
    return LLMRequest.chat(
        filled_user,
        system=filled_system,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        tag=f"{item.id}/{which}",
    )


def _budgets(principle: Principle, max_tokens: int | tuple[int, int] | None) -> tuple[int, int]:
    if max_tokens is None:
        return principle.critique_max_tokens, principle.revision_max_tokens
    if isinstance(max_tokens, int):
        budgets = (max_tokens, max_tokens)
    else:
        budgets = (int(max_tokens[0]), int(max_tokens[1]))
    if min(budgets) < 1:
        raise PersonaLabError(f"DPF max_tokens {max_tokens!r}: expected a positive number of tokens")
    return budgets


def critique_requests(
    items: Sequence[DPFItem],
    principle: Principle,
    *,
    originals: Sequence[str] | None = None,
    single_call: bool = False,
    max_tokens: int | tuple[int, int] | None = None,
    temperature: float = 0.0,
    seed: int = 0,
) -> list[LLMRequest]:
    """The critique requests (or the one-call requests) of ``items``; ``originals`` replaces the responses."""
    c_tokens, r_tokens = _budgets(principle, max_tokens)
    texts = originals if originals is not None else [i.original for i in items]
    which = "single" if single_call else "critique"
    budget = c_tokens + r_tokens if single_call else c_tokens
    return [
        _request(principle, which, item, text, max_tokens=budget, temperature=temperature, seed=seed)
        for item, text in zip(items, texts, strict=True)
    ]


def revision_requests(
    items: Sequence[DPFItem],
    principle: Principle,
    critiques: Sequence[str],
    *,
    originals: Sequence[str] | None = None,
    max_tokens: int | tuple[int, int] | None = None,
    temperature: float = 0.0,
    seed: int = 0,
) -> list[LLMRequest]:
    """The revision requests of ``items`` given their critiques (``originals`` replaces the responses)."""
    _, r_tokens = _budgets(principle, max_tokens)
    texts = originals if originals is not None else [i.original for i in items]
    return [
        _request(
            principle,
            "revision",
            item,
            text,
            critique=crit,
            max_tokens=r_tokens,
            temperature=temperature,
            seed=seed,
        )
        for item, text, crit in zip(items, texts, critiques, strict=True)
    ]


def dpf_requests(
    items: Sequence[DPFItem],
    principle: Principle,
    *,
    single_call: bool = False,
    rounds: int = 1,
    max_tokens: int | tuple[int, int] | None = None,
    temperature: float = 0.0,
    seed: int = 0,
) -> list[LLMRequest]:
    """The plan: every request ``critique_and_revise`` would send if each call succeeded (calls nothing).

    Critiques first, then revisions; a revision is built with a placeholder critique as long as the critique's
    ``max_tokens``, so its token count bounds the real one. With ``rounds > 1`` every round is planned on the
    original text (later rounds revise a revision, which is no longer than the placeholder bounds suggest).
    """
    c_tokens, _ = _budgets(principle, max_tokens)
    placeholder = (PLACEHOLDER_WORD * c_tokens).strip()
    kw: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
    out: list[LLMRequest] = []
    for _ in range(max(1, rounds)):
        out += critique_requests(items, principle, single_call=single_call, **kw)
        if not single_call:
            out += revision_requests(items, principle, [placeholder] * len(items), **kw)
    return out


CRITIQUE_COPY_SHARE = 0.6
"""A critique whose longest word run shared with the answer covers this share of its words repeats the answer
(quoting parts of it, as the templates ask, stays well below)."""

REVISION_COPY_SHARE = 0.9
"""A revision whose longest word run shared with the original covers this share of its words is an excerpt of
the original (e.g. the original cut off by the token budget), not a revision."""


COPY_NGRAM = 5
"""Copies are found as shared runs of this many words (reordered or repeated phrases still count)."""


def copied_share(text: str, source: str) -> float:
    """Share of ``text``'s words that lie in a run of :data:`COPY_NGRAM` words also found in ``source``.

    0 for texts shorter than :data:`COPY_NGRAM` words ("Cut." may share its one word with the answer). A text
    stitched from phrases of ``source``, in any order and repeated, scores near 1; a paraphrase near 0.
    """
    a, b = words(text), words(source)
    n = COPY_NGRAM
    if len(a) < n or len(b) < n:
        return 0.0
    grams = {b[i : i + n] for i in range(len(b) - n + 1)}
    covered = [False] * len(a)
    for i in range(len(a) - n + 1):
        if a[i : i + n] in grams:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(a)


def _failure(result: Result) -> str:
    assert isinstance(result, LLMFailure)
    return f"{result.kind}: {result.reason}"


def _mentions(text: str, value: str) -> bool:
    needle = words(value)
    if not needle:
        return False
    hay = words(text)
    n = len(needle)
    return any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def check_critique(
    critique: Critique, principle: Principle, which: str = "critique", original: str = ""
) -> str:
    """``""`` or the degenerate failure of a parsed critique: an echo of its template, an empty rationale, or
    a repetition of the answer it critiques (the same or nearly the same words say nothing about it)."""
    for part in (critique.evaluation, critique.suggestions):
        if not part:
            continue
        reason = degenerate_reason(part, instructions=principle.instructions(which), rationale=True)
        if reason is not None:
            return degenerate_failure(f"critique {reason}")
        if original and (
            degenerate_reason(part, siblings=(original,)) is not None
            or copied_share(part, original) >= CRITIQUE_COPY_SHARE
        ):
            return degenerate_failure("critique repeats the answer")
    return ""


def check_revision(
    revision: str,
    original: str,
    item: DPFItem,
    principle: Principle,
    which: str = "revision",
    critique: str = "",
) -> str:
    """``""`` or why a parsed revision makes no pair: degenerate (also when it is a copy of the ``critique``),
    identical to the original or an excerpt of it (:data:`REVISION_COPY_SHARE`), or naming a forbidden value of
    the principle."""
    reason = degenerate_reason(revision, instructions=principle.instructions(which))
    if reason is not None:
        return degenerate_failure(f"revision {reason}")
    if words(revision) == words(original):
        return "identical: the revision repeats the original"
    if copied_share(revision, original) >= REVISION_COPY_SHARE:
        return "identical: the revision is an excerpt of the original"
    if critique and copied_share(revision, critique) >= REVISION_COPY_SHARE:
        return degenerate_failure("revision repeats the critique")
    for name in principle.forbidden:
        value = str(item.variables.get(name, ""))
        if value and _mentions(revision, value):
            return f"forbidden: the revision still mentions {value!r} ({name})"
    return ""


@dataclass
class _State:
    item: DPFItem
    current: str
    critique: str | None = None
    revision: str | None = None
    critique_raw: str = ""
    revision_raw: str = ""
    failure: str = ""
    keys: list[str] = field(default_factory=list)
    backend: str = ""
    model: str = ""
    calls: int = 0
    history: list[dict[str, str]] = field(default_factory=list)

    def saw(self, result: Result) -> None:
        self.calls += 1
        self.keys.append(result.key)
        self.backend = self.backend or result.backend
        self.model = self.model or result.model


def critique_and_revise(
    items: Sequence[DPFItem],
    principle: Principle,
    run: RunFn,
    *,
    single_call: bool = False,
    rounds: int = 1,
    max_tokens: int | tuple[int, int] | None = None,
    temperature: float = 0.0,
    seed: int = 0,
    desc: str = "",
) -> list[DPFResult]:
    """Critique and revise every item under ``principle``; one result per item, in order.

    Args:
        items: the responses with their contexts and the principle's variables.
        principle: e.g. ``load_principle("persona")``.
        run: sends requests, ``run(requests, desc=...) -> [LLMResponse | LLMFailure]`` in order
            (``RunContext.run_requests``, or ``functools.partial(persona_lab.llm.run_requests, backend=...,
            cache=...)``).
        single_call: ablation: one call writes critique and revision (``single.txt``).
        rounds: ablation: critique and revise ``rounds`` times, each round revising the last revision.
        max_tokens: output budget of critiques and revisions (one number for both, a pair, or ``None`` for the
            principle's defaults); the single call gets their sum.
        temperature: sampling temperature of every call.
        seed: sampling seed of every call.
        desc: progress-bar label prefix.

    Returns:
        :class:`DPFResult` per item: a pair (``failure == ""``) or the recorded failure with the raw texts.
        Items that fail in a round are not sent to later rounds.

    Raises:
        PersonaLabError: ``rounds < 1``, or an item lacks one of the principle's variables.
    """
    if rounds < 1:
        raise PersonaLabError(f"DPF rounds = {rounds}: expected at least one round of critique and revision")
    for item in items:
        _values(item, principle)
    states = [_State(item=item, current=item.original) for item in items]
    kw: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
    label = f"{desc} " if desc else ""
    for r in range(rounds):
        live = [s for s in states if not s.failure]
        if not live:
            break
        suffix = f" (round {r + 1})" if rounds > 1 else ""
        first = critique_requests(
            [s.item for s in live],
            principle,
            originals=[s.current for s in live],
            single_call=single_call,
            **kw,
        )
        results = run(first, desc=f"{label}{'critique+revision' if single_call else 'critiques'}{suffix}")
        for state, result in zip(live, results, strict=True):
            state.saw(result)
            if isinstance(result, LLMFailure):
                state.failure = f"critique call {_failure(result)}"
                continue
            state.critique_raw = result.text
            if single_call:
                critique, revision, failure = parse_single(result.text)
                state.revision_raw = result.text
                if critique is not None:
                    state.critique = critique.text
                    failure = failure or check_critique(critique, principle, "single", state.current)
                if not failure and revision is not None:
                    state.revision = revision
                    failure = check_revision(
                        revision,
                        state.current,
                        state.item,
                        principle,
                        "single",
                        critique=state.critique or "",
                    )
                state.failure = failure
            else:
                critique, failure = parse_critique(result.text)
                if critique is not None:
                    state.critique = critique.text
                    failure = failure or check_critique(critique, principle, original=state.current)
                state.failure = failure
        if not single_call:
            ready = [s for s in states if not s.failure and s in live]
            second = revision_requests(
                [s.item for s in ready],
                principle,
                [s.critique or "" for s in ready],
                originals=[s.current for s in ready],
                **kw,
            )
            results = run(second, desc=f"{label}revisions{suffix}") if second else []
            for state, result in zip(ready, results, strict=True):
                state.saw(result)
                if isinstance(result, LLMFailure):
                    state.failure = f"revision call {_failure(result)}"
                    continue
                state.revision_raw = result.text
                revision, failure = parse_revision(result.text)
                if revision is not None:
                    state.revision = revision
                    failure = check_revision(
                        revision, state.current, state.item, principle, critique=state.critique or ""
                    )
                state.failure = failure
        for state in live:
            state.history.append({"critique": state.critique or "", "revision": state.revision or ""})
            if not state.failure and state.revision is not None:
                state.current = state.revision
    out: list[DPFResult] = []
    for s in states:
        ok = not s.failure and s.revision is not None
        if not s.failure and s.revision is None:  # pragma: no cover - every path sets one of them
            s.failure = "unparseable: no revision"
        if ok and _back_to_original(s):
            s.failure = "identical: the revision repeats the original"
            ok = False
        provenance: dict[str, Any] = {
            "backend": s.backend,
            "model": s.model,
            "request_keys": list(s.keys),
            "calls": s.calls,
            "principle": principle.name,
            "principle_fingerprint": principle.fingerprint,
            "single_call": single_call,
            "rounds": rounds,
        }
        if rounds > 1:
            provenance["history"] = list(s.history)
        out.append(
            DPFResult(
                id=s.item.id,
                critique=s.critique,
                revision=s.revision,
                chosen=s.revision if ok else None,
                rejected=s.item.original if ok else None,
                failure=s.failure,
                critique_raw=s.critique_raw,
                revision_raw=s.revision_raw,
                provenance=provenance,
            )
        )
    return out


def _back_to_original(state: _State) -> bool:
    """After several rounds, the last revision may have come back to the original text."""
    return state.revision is not None and words(state.revision) == words(state.item.original)
