"""The four ways the model under test answers (PERSONA Sec. 5, Fig. 10), with structured output.

PERSONA Bench (Castricato et al. 2024, Sec. 5) asks a model to answer a question for a persona in four modes:

- ``baseline``: the question alone, no persona (about 5 % accuracy for every model in the paper);
- ``output_only``: the persona and the question, the answer only;
- ``chain_of_thought``: the persona and the question, step-by-step reasoning first, then the answer;
- ``persona_summary``: first a summary of the parts of the persona relevant to the question, then the answer
  (the best mode for every model in the paper).

Each answer is one JSON object (schema: :class:`DirectAnswer`, :class:`ReasonedAnswer`,
:class:`SummarizedAnswer`) so the answer stays apart from the reasoning or summary: the critic is shown the
``answer`` field only, never the reasoning. The templates (``mode_*.txt`` next to this module) were written for
this project. An answer that is empty, echoes its instructions, repeats the question or equals its own reasoning
is degenerate (``persona_lab.llm.degenerate_reason``): a recorded failure with its raw text, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona_lab.bench._templates import fill, sections
from persona_lab.errors import PersonaLabError
from persona_lab.llm import LLMFailure, LLMRequest, LLMResponse, degenerate_failure, degenerate_reason


class DirectAnswer(BaseModel):
    """The answer of the ``baseline`` and ``output_only`` modes."""

    model_config = ConfigDict(extra="forbid")
    answer: str = Field(description="The answer the person reads.")


class ReasonedAnswer(BaseModel):
    """The answer of the ``chain_of_thought`` mode: private reasoning first, then the answer."""

    model_config = ConfigDict(extra="forbid")
    reasoning: str = Field(
        description="Private step-by-step thinking about what matters to this person for this question."
    )
    answer: str = Field(description="The answer the person reads.")


class SummarizedAnswer(BaseModel):
    """The answer of the ``persona_summary`` mode: a summary of the relevant persona first, then the answer."""

    model_config = ConfigDict(extra="forbid")
    summary: str = Field(description="The parts of the person's profile that matter for this question.")
    answer: str = Field(description="The answer the person reads.")


@dataclass(frozen=True)
class Mode:
    """One bench mode.

    Attributes:
        name: the mode's name in configuration and tables.
        template: its template file.
        schema: the pydantic model of its JSON answer.
        uses_persona: whether the model under test sees the persona.
        aside: the field written before the answer (``reasoning``, ``summary``), or ``None``.
        label: a readable name for charts.
    """

    name: str
    template: str
    schema: type[BaseModel]
    uses_persona: bool
    aside: str | None
    label: str

    def instructions(self) -> tuple[str, ...]:
        """Texts an answer must not echo: the unfilled template and the schema's field descriptions."""
        system, user = sections(self.template)
        descriptions = tuple(
            str(f.description) for f in self.schema.model_fields.values() if f.description is not None
        )
        return (system, user, *descriptions)


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("baseline", "mode_baseline.txt", DirectAnswer, False, None, "baseline (no persona)"),
        Mode("output_only", "mode_output_only.txt", DirectAnswer, True, None, "output only"),
        Mode(
            "chain_of_thought",
            "mode_chain_of_thought.txt",
            ReasonedAnswer,
            True,
            "reasoning",
            "chain of thought",
        ),
        Mode(
            "persona_summary",
            "mode_persona_summary.txt",
            SummarizedAnswer,
            True,
            "summary",
            "persona summary",
        ),
    )
}
"""The four modes, in the paper's order."""

MODE_NAMES: tuple[str, ...] = tuple(MODES)
"""``("baseline", "output_only", "chain_of_thought", "persona_summary")``."""


def get_mode(name: str, *, setting: str = "bench.modes") -> Mode:
    """The mode called ``name``.

    Raises:
        PersonaLabError: an unknown mode (naming the setting and the known modes).
    """
    try:
        return MODES[name]
    except KeyError:
        raise PersonaLabError(
            f"{setting}: unknown mode {name!r}; choose among {', '.join(MODE_NAMES)}"
        ) from None


def answer_request(
    mode: str,
    persona: str,
    question: str,
    *,
    words: int = 150,
    max_tokens: int = 1024,
    temperature: float = 0.0,
    seed: int = 0,
    sample_index: int = 0,
    tag: str = "",
) -> LLMRequest:
    """The request for one answer of the model under test.

    Args:
        mode: one of :data:`MODE_NAMES`.
        persona: the persona in PERSONA's text format (ignored by ``baseline``).
        question: the prompt.
        words: the answer's word limit stated in the template.
        max_tokens: output budget (reasoning or summary included).
        temperature: sampling temperature.
        seed: sampling seed (pass@k gives each sample its own).
        sample_index: which repeated sample this is (part of the cache key).
        tag: label for ordering and progress.
    """
    m = get_mode(mode)
    system, user = sections(m.template)
    values = {"question": question.strip(), "words": str(words), "persona": persona.strip() + "\n"}
    return LLMRequest.chat(
        fill(user, **values),
        system=fill(system, **values),
        json_schema=m.schema.model_json_schema(),
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        sample_index=sample_index,
        tag=tag,
    )


@dataclass(frozen=True)
class ParsedAnswer:
    """One answer of the model under test, read from the runner's result.

    Attributes:
        answer: the text the person reads (``None`` when the answer failed).
        aside: the reasoning or summary (``""`` for modes without one, or when the answer failed).
        failure: ``""``, or why the answer is not usable (``"<kind>: <reason>"``, ``"degenerate: ..."``).
        raw: the model's raw text (kept for failures).
    """

    answer: str | None
    aside: str
    failure: str
    raw: str

    @property
    def ok(self) -> bool:
        return not self.failure


def _failure_text(result: LLMFailure) -> str:
    return f"{result.kind}: {result.reason}"


def parse_answer(result: LLMResponse | LLMFailure, mode: str, question: str) -> ParsedAnswer:
    """Validate one answer against its mode's schema and the degenerate-answer checks.

    The answer fails when the call failed, the JSON does not fit the schema, or a field is degenerate: empty,
    an echo of the instructions, the question word for word (a restatement that takes a side, "You should not
    tell her", is an answer), or (for the reasoning modes) the same or nearly the same text as the reasoning or
    summary.
    """
    m = get_mode(mode)
    if isinstance(result, LLMFailure):
        return ParsedAnswer(None, "", _failure_text(result), "")
    raw = result.text
    data: Any = result.parsed
    if data is None:
        return ParsedAnswer(None, "", f"unparseable: the answer has no JSON object: {raw[:160]!r}", raw)
    try:
        value = m.schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        return ParsedAnswer(None, "", f"unparseable: answer field {where}: {first['msg']}", raw)
    answer = str(getattr(value, "answer")).strip()  # noqa: B009 - a pydantic model built at run time
    aside = str(getattr(value, m.aside)).strip() if m.aside else ""
    instructions = m.instructions()
    reasons: dict[str, str] = {}
    reason = degenerate_reason(answer, instructions=instructions, siblings=[aside] if m.aside else [])
    if reason is None:
        # the question word for word is no answer; a restatement with a verdict ("You should not ...") is one
        echo = degenerate_reason(answer, siblings=[question])
        reason = "same text as the question" if echo == "same text as another field" else None
    if reason is not None:
        reasons["answer"] = reason
    if m.aside:
        aside_reason = degenerate_reason(aside, instructions=instructions)
        if aside_reason is not None:
            reasons[m.aside] = aside_reason
    if reasons:
        return ParsedAnswer(None, aside, degenerate_failure(reasons), raw)
    return ParsedAnswer(answer, aside, "", raw)
