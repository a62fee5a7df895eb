"""The critic and the two judges of PERSONA Bench: needs revision, too on-the-nose, attributes a summary covers.

PERSONA Bench (Castricato et al. 2024, Sec. 5) scores an answer with a critic LLM that decides whether the answer
still needs revision to be correctly and subtly personalized for the persona; the score is 1 when no revision is
needed. The critic here sees the persona, the question and the ``answer`` field only (never the model's
reasoning or summary) and states its reasoning before its verdict (:class:`CriticVerdict`). The critic is any
backend, configured apart from the models under test (``bench.critic``): grading another provider's model needs
no OpenAI key.

The subtlety judge (:class:`SubtletyVerdict`) asks whether an answer is on-the-nose, i.e. names the persona's
attributes instead of fitting them (the paper's chain-of-thought vs direct comparison). The summary judge
(:func:`summary_judge_request`) lists the persona attributes a ``persona_summary`` note mentions, an optional
second opinion beside the deterministic matcher of Fig. 11.

A verdict the model cannot give (no JSON, a schema violation, an empty or echoed rationale) is a recorded failure
with its raw text: the answer is then unscored, never counted as a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona_lab.bench._templates import fill, sections
from persona_lab.llm import LLMFailure, LLMRequest, LLMResponse, degenerate_failure, degenerate_reason


class CriticVerdict(BaseModel):
    """The critic's judgement of one answer; the reasoning comes first, so the verdict is conditioned on it."""

    model_config = ConfigDict(extra="forbid")
    reasoning: str = Field(description="Why the answer does or does not suit this person, quoting both.")
    needs_revision: bool = Field(
        description="True if the answer still needs revision to be correctly and subtly personalized."
    )


class SubtletyVerdict(BaseModel):
    """The subtlety judge's judgement of one answer."""

    model_config = ConfigDict(extra="forbid")
    reasoning: str = Field(description="How the answer refers to the person, quoting it.")
    on_the_nose: bool = Field(
        description="True if the answer names or points at the person's characteristics."
    )


def _request(template: str, schema: dict[str, Any], *, max_tokens: int, seed: int, tag: str, **values: str):
    system, user = sections(template)
    return LLMRequest.chat(
        fill(user, **values),
        system=fill(system, **values),
        json_schema=schema,
        max_tokens=max_tokens,
        temperature=0.0,
        seed=seed,
        tag=tag,
    )


def critic_request(
    persona: str, question: str, answer: str, *, max_tokens: int = 512, seed: int = 0, tag: str = ""
) -> LLMRequest:
    """The critic's request for one answer: the persona, the question and the answer (nothing else).

    The critic decodes greedily (temperature 0): a verdict is a measurement, not a sample.
    """
    return _request(
        "critic.txt",
        CriticVerdict.model_json_schema(),
        max_tokens=max_tokens,
        seed=seed,
        tag=tag,
        persona=persona.strip() + "\n",
        question=question.strip(),
        answer=answer.strip(),
    )


def subtlety_request(
    persona: str, question: str, answer: str, *, max_tokens: int = 512, seed: int = 0, tag: str = ""
) -> LLMRequest:
    """The subtlety judge's request for one answer."""
    return _request(
        "subtlety.txt",
        SubtletyVerdict.model_json_schema(),
        max_tokens=max_tokens,
        seed=seed,
        tag=tag,
        persona=persona.strip() + "\n",
        question=question.strip(),
        answer=answer.strip(),
    )


def summary_schema(attributes: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the summary judge's answer: ``{"mentioned": [attribute names of this persona]}``."""
    return {
        "type": "object",
        "properties": {
            "mentioned": {
                "type": "array",
                "items": {"type": "string", "enum": list(attributes)},
                "description": "Names of the profile's attributes that the notes mention.",
            }
        },
        "required": ["mentioned"],
        "additionalProperties": False,
    }


def summary_judge_request(
    persona: str,
    summary: str,
    attributes: Sequence[str],
    *,
    max_tokens: int = 512,
    seed: int = 0,
    tag: str = "",
) -> LLMRequest:
    """The summary judge's request: which of ``attributes`` (the persona's) the summary mentions."""
    return _request(
        "summary_judge.txt",
        summary_schema(attributes),
        max_tokens=max_tokens,
        seed=seed,
        tag=tag,
        persona=persona.strip() + "\n",
        summary=summary.strip(),
    )


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict read from the runner's result.

    Attributes:
        value: the verdict (``needs_revision`` or ``on_the_nose``), ``None`` when it failed.
        rationale: the judge's reasoning (``""`` when it failed).
        failure: ``""`` or why the verdict is unusable.
        raw: the judge's raw text.
    """

    value: bool | None
    rationale: str
    failure: str
    raw: str


def _instructions(template: str, model: type[BaseModel]) -> tuple[str, ...]:
    system, user = sections(template)
    return (system, user, *(str(f.description) for f in model.model_fields.values() if f.description))


def _parse(
    result: LLMResponse | LLMFailure,
    model: type[BaseModel],
    field: str,
    template: str,
    siblings: Sequence[str],
) -> Verdict:
    if isinstance(result, LLMFailure):
        return Verdict(None, "", f"{result.kind}: {result.reason}", "")
    raw = result.text
    if result.parsed is None:
        return Verdict(None, "", f"unparseable: the verdict has no JSON object: {raw[:160]!r}", raw)
    try:
        value = model.model_validate(result.parsed)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        return Verdict(None, "", f"unparseable: verdict field {where}: {first['msg']}", raw)
    rationale = str(getattr(value, "reasoning")).strip()  # noqa: B009 - a pydantic model built at run time
    reason = degenerate_reason(
        rationale, instructions=_instructions(template, model), siblings=siblings, rationale=True
    )
    if reason is not None:
        return Verdict(None, rationale, degenerate_failure({"reasoning": reason}), raw)
    return Verdict(bool(getattr(value, field)), rationale, "", raw)


def parse_verdict(result: LLMResponse | LLMFailure, *, answer: str = "", question: str = "") -> Verdict:
    """Read the critic's verdict (``value`` = needs revision). A rationale that is empty, a bare verdict, an
    echo of the critic's instructions, or the answer or question repeated is a degenerate failure."""
    return _parse(result, CriticVerdict, "needs_revision", "critic.txt", [s for s in (answer, question) if s])


def parse_subtlety(result: LLMResponse | LLMFailure, *, answer: str = "", question: str = "") -> Verdict:
    """Read the subtlety judge's verdict (``value`` = on-the-nose), with the same checks as the critic's."""
    return _parse(
        result, SubtletyVerdict, "on_the_nose", "subtlety.txt", [s for s in (answer, question) if s]
    )


def parse_summary_judgement(
    result: LLMResponse | LLMFailure, attributes: Sequence[str]
) -> tuple[list[str] | None, str]:
    """Read the summary judge's list: ``(mentioned attributes, "")`` or ``(None, failure)``.

    Names outside ``attributes`` (the persona's) make the answer unusable; repeats are dropped.
    """
    if isinstance(result, LLMFailure):
        return None, f"{result.kind}: {result.reason}"
    data = result.parsed
    if not isinstance(data, dict) or not isinstance(data.get("mentioned"), list):
        return None, f"unparseable: expected {{'mentioned': [...]}}, got {result.text[:160]!r}"
    allowed = set(attributes)
    names = [str(x) for x in data["mentioned"]]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        return None, f"unparseable: attribute(s) {unknown[:3]} are not in this persona's profile"
    return list(dict.fromkeys(names)), ""
