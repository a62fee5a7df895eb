"""Model annotators: an LLM role-plays a persona and chooses which of two answers that persona would prefer.

PERSONA (Castricato et al. 2024, Sec. 4) lets GPT-4, Llama-3 70B, Qwen-2 72B and Mistral Large role-play the
study's personas on the same questions as the people, so their choices can be compared with kappa. Here:

- The persona is the system message (PERSONA's text format), the question and the two answers, labelled A and
  B, the user message (``judge.txt``). The answer is a closed choice: JSON ``{"choice": "A" | "B",
  "justification": "..."}`` (the local backend decodes it under a grammar that allows only those values, with
  the justification capped at :data:`LOCAL_JUSTIFICATION_CHARS` characters so the answer always closes), or with
  ``justify=False`` the bare letter (``judge_choice.txt``, ``choices=("A", "B")``).
- Which answer is A is drawn per annotator and item from a seed (:func:`persona_lab.agreement.answer_order`),
  independently for every annotator, and recorded (``order_shown``), so a shared position bias cannot pass
  for agreement and position effects can be measured.
- A failed call, an unparseable answer, a degenerate justification (empty, a bare verdict, an echo of the
  instructions: ``persona_lab.llm.degenerate_reason``) and a justification that names only the other answer
  ("I prefer A" with the choice B: :func:`contradiction`) are failures with the raw text and no label, never
  labels.
- Several annotators run in one stage: different backends, or one backend at two temperatures, or two
  samplings (same temperature above 0, different ``sample``). The latter two are a model-vs-model comparison of
  one model with itself, and the labels say so (:meth:`ModelAnnotator.describe`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from persona_lab.agreement._study import stable_seed
from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    LLMFailure,
    LLMRequest,
    LLMResponse,
    degenerate_failure,
    degenerate_reason,
)
from persona_lab.templates import load_template

LETTERS: tuple[str, str] = ("A", "B")
"""How the two answers are labelled for a model annotator."""
LOCAL_JUSTIFICATION_CHARS = 140
"""Longest justification the local backend's grammar allows (hosted providers' strict JSON modes reject length
limits, so theirs is bounded by ``judge_max_tokens`` only)."""

_NAMED_LETTER = re.compile(r"\b(?:answer|option|choice|prefer|choose|pick|select)\s+([AB])\b", re.IGNORECASE)


_WORDS = re.compile(r"\w+")


def quotes_instruction(justification: str, texts: Sequence[str]) -> bool:
    """Whether the whole justification is a phrase of the instructions ("One short sentence"): shorter echoes
    than ``persona_lab.llm.degenerate_reason`` looks for, which matter for a justification because it must be
    the annotator's own reason."""
    mine = _WORDS.findall(justification.casefold())
    if len(mine) < 2:
        return False
    phrase = " " + " ".join(mine) + " "
    return any(phrase in " " + " ".join(_WORDS.findall(text.casefold())) + " " for text in texts)


def contradiction(justification: str, letter: str) -> str | None:
    """``"contradictory: ..."`` when the justification names only the other answer ("I prefer A" with the choice
    B), else ``None``. Such a judgment says both things at once, so it is a failure, not a label."""
    named = {m.upper() for m in _NAMED_LETTER.findall(justification)}
    if named and letter not in named:
        return (
            f"contradictory: the justification names answer {'/'.join(sorted(named))}, the choice is {letter}"
        )
    return None


CHOICE_MAX_TOKENS = 8
"""Output budget of a bare choice: one letter (the local grammar stops after it), or a small JSON object
for hosted providers that answer closed choices through structured output."""

RunFn = Callable[..., list[LLMResponse | LLMFailure]]
"""``run(requests, backend=spec, desc=...) -> results in order`` (``RunContext.run_requests``)."""


class RolePlayChoice(BaseModel):
    """A model annotator's answer: the preferred answer and why, in the persona's voice."""

    model_config = ConfigDict(extra="forbid")
    choice: Literal["A", "B"]
    """The answer the persona would prefer."""
    justification: str = Field(description="One short sentence, in the persona's voice, saying why.")
    """Why, in one short sentence."""


def _sections(name: str) -> tuple[str, str]:
    text = load_template("persona_lab.agreement", name)
    system, _, user = text.partition("### user")
    return system.replace("### system", "", 1).strip(), user.strip()


def _fill(template: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def judgment_schema(*, local: bool) -> dict[str, Any]:
    """The JSON schema of :class:`RolePlayChoice`, with the justification's length cap for the local grammar."""
    schema = RolePlayChoice.model_json_schema()
    if local:
        schema["properties"]["justification"]["maxLength"] = LOCAL_JUSTIFICATION_CHARS
    return schema


@dataclass(frozen=True)
class ModelAnnotator:
    """One model annotator (from ``agreement.annotators``).

    Attributes:
        label: its name in ``judgments.parquet`` and the figures.
        backend: the backend spec.
        temperature: sampling temperature.
        sample: sample index and seed.
        justify: answer with a justification (JSON) rather than a bare letter.
        max_tokens: output budget of one judgment.
    """

    label: str
    backend: str
    temperature: float
    sample: int = 0
    justify: bool = True
    max_tokens: int = 96

    def describe(self, model: str = "") -> str:
        """An honest description for figures: backend (model), temperature, sample."""
        who = f"{self.backend} ({model})" if model and model not in self.backend else self.backend
        how = "temperature 0 (greedy)" if self.temperature == 0 else f"temperature {self.temperature:g}"
        return f"{who}, {how}" + (f", sample {self.sample}" if self.sample else "")


def default_label(backend: str, temperature: float, sample: int) -> str:
    """``<backend> t=<temperature>`` plus `` s<sample>`` when the sample is not 0."""
    return f"{backend} t={temperature:g}" + (f" s{sample}" if sample else "")


def model_annotators(config: Any, *, justify: bool | None = None) -> list[ModelAnnotator]:
    """The configured model annotators (``config`` is the run configuration), checked.

    Raises:
        PersonaLabError: two annotators with the same label, or identical in backend, temperature and sample
            (they would give the same labels), or differing only in sample at temperature 0 (greedy decoding
            gives every sample the same answer).
    """
    cfg = config.agreement
    out: list[ModelAnnotator] = []
    for spec in cfg.annotators:
        backend = spec.backend or config.llm.backend
        out.append(
            ModelAnnotator(
                label=spec.label or default_label(backend, spec.temperature, spec.sample),
                backend=backend,
                temperature=spec.temperature,
                sample=spec.sample,
                justify=cfg.justify if justify is None else justify,
                max_tokens=cfg.judge_max_tokens,
            )
        )
    for i, a in enumerate(out):
        for j in range(i):
            b = out[j]
            where = f"agreement.annotators[{j}] and [{i}]"
            if a.label == b.label:
                raise PersonaLabError(
                    f"{where} have the same label {a.label!r}; give each annotator its own label"
                )
            if (a.backend, a.temperature, a.sample) == (b.backend, b.temperature, b.sample):
                raise PersonaLabError(
                    f"{where} are the same backend, temperature and sample; they would give identical labels"
                )
            if a.backend == b.backend and a.temperature == b.temperature == 0:
                raise PersonaLabError(
                    f"{where} differ only in sample at temperature 0, where decoding is greedy and every sample "
                    "gets the same answer; give them a temperature above 0"
                )
    return out


@dataclass(frozen=True)
class JudgeItem:
    """One decision for one annotator: which of two answers the role-played persona would prefer.

    Attributes:
        key: a stable id (request tag), e.g. ``"persona_id/prompt_id"``.
        persona: the persona text the annotator role-plays.
        prompt: the question.
        answers: label -> answer text, exactly two (e.g. ``revision`` and ``original``).
        order: the two labels in the order shown (first = A).
    """

    key: str
    persona: str
    prompt: str
    answers: Mapping[str, str]
    order: tuple[str, str]


def seeded_order(labels: Sequence[str], *parts: object) -> tuple[str, str]:
    """The two ``labels`` in a seeded random order (first = shown as A)."""
    first, second = labels
    return (first, second) if stable_seed("order", *parts) % 2 == 0 else (second, first)


def judge_request(item: JudgeItem, annotator: ModelAnnotator) -> LLMRequest:
    """The request that asks ``annotator`` for ``item``'s choice."""
    if len(item.answers) != 2 or set(item.order) != set(item.answers):
        raise PersonaLabError(
            f"judgment {item.key!r}: expected two answers shown in some order, got {item.order}"
        )
    system, user = _sections("judge.txt" if annotator.justify else "judge_choice.txt")
    values = {
        "persona": item.persona.strip(),
        "prompt": item.prompt.strip(),
        "answer_a": item.answers[item.order[0]].strip(),
        "answer_b": item.answers[item.order[1]].strip(),
    }
    kw: dict[str, Any] = {
        "temperature": annotator.temperature,
        "max_tokens": annotator.max_tokens if annotator.justify else CHOICE_MAX_TOKENS,
        "seed": annotator.sample,
        "sample_index": annotator.sample,
        "tag": item.key,
    }
    if annotator.justify:
        kw["json_schema"] = judgment_schema(local=annotator.backend.split(":")[0] == "local")
    else:
        kw["choices"] = LETTERS
    return LLMRequest.chat(_fill(user, values), system=_fill(system, values), **kw)


def instructions(justify: bool = True) -> tuple[str, ...]:
    """The unfilled template texts a justification must not echo."""
    system, user = _sections("judge.txt" if justify else "judge_choice.txt")
    return system, user, str(RolePlayChoice.model_fields["justification"].description)


def parse_judgment(
    result: LLMResponse | LLMFailure, item: JudgeItem, annotator: ModelAnnotator
) -> dict[str, Any]:
    """A judgment row from one result: ``choice`` (a label of ``item.answers``, or None), ``rationale``,
    ``failure`` (``""`` when good), ``raw``, ``order_shown``, ``model``."""
    row: dict[str, Any] = {
        "choice": None,
        "rationale": "",
        "failure": "",
        "raw": "",
        "order_shown": ",".join(item.order),
        "model": getattr(result, "model", ""),
    }
    if isinstance(result, LLMFailure):
        row["failure"] = f"{result.kind}: {result.reason}"
        return row
    row["raw"] = result.text
    if annotator.justify:
        parsed = result.parsed
        if parsed is None:
            try:
                parsed = json.loads(result.text)
            except json.JSONDecodeError:
                parsed = None
        letter = parsed.get("choice") if isinstance(parsed, dict) else None
        justification = str(parsed.get("justification", "")) if isinstance(parsed, dict) else ""
        if letter not in LETTERS:
            row["failure"] = f"unparseable: no choice A or B in {result.text[:80]!r}"
            return row
        row["rationale"] = justification
        reason = degenerate_reason(justification, instructions=instructions(True), rationale=True)
        if reason is None and quotes_instruction(justification, instructions(True)):
            reason = "echoes the instruction"
        if reason is not None:
            row["failure"] = degenerate_failure(f"justification {reason}")
            return row
        contradictory = contradiction(justification, letter)
        if contradictory is not None:
            row["failure"] = contradictory
            return row
    else:
        letter = result.choice if result.choice in LETTERS else result.text.strip()[:1].upper()
        if letter not in LETTERS:
            row["failure"] = f"unparseable: answer {result.text[:40]!r} is neither A nor B"
            return row
    row["choice"] = item.order[LETTERS.index(letter)]
    return row


def judge(
    items: Sequence[JudgeItem], annotator: ModelAnnotator, run: RunFn, *, desc: str = ""
) -> list[dict[str, Any]]:
    """Ask ``annotator`` for every item through ``run``; one row per item (see :func:`parse_judgment`)."""
    if not items:
        return []
    requests = [judge_request(i, annotator) for i in items]
    results = run(requests, backend=annotator.backend, desc=desc or f"judge {annotator.label}")
    return [parse_judgment(r, i, annotator) for r, i in zip(results, items, strict=True)]
