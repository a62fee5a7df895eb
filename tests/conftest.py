from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from persona_lab.llm import LLMError, LLMRequest, LLMResponse
from persona_lab.paths import shared_data_dir

SHARED = shared_data_dir()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The real development data in ../shared/data (never copied into the repository)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read the real data from ../shared/data")
    return SHARED


ADULT_ROW: dict[str, object] = {
    "age": 40,
    "sex": "Female",
    "race": "White alone",
    "ancestry": "Irish",
    "household language": "English only",
    "education": "Bachelor's degree",
    "employment status": "Civilian employed, at work",
    "class of worker": "State government employee",
    "industry category": "EDU-Elementary And Secondary Schools",
    "occupation category": "EDU-Elementary And Middle School Teachers",
    "income": 52000.0,
    "marital status": "Married",
    "household type": "Married couple household with children of the householder less than 18",
    "family presence and age": "With related children 5 to 17 years only",
    "place of birth": "Vermont/VT",
    "citizenship": "Born in the United States",
    "veteran status": "Non-Veteran",
    "disability": "None",
    "health insurance": "With health insurance coverage",
    "cognitive difficulty": "No cognitive difficulty",
    "ability to speak english": None,
    "vision difficulty": "No vision difficulty",
    "fertility": "No birth within the past 12 months",
    "hearing difficulty": "No hearing difficulty",
    "weight": 12.0,
    "serialno": "2018HU0000001",
    "state": "VT",
}
"""One persona-frame row (a 40-year-old teacher in Vermont) that persona tests vary with ``ADULT_ROW | {...}``."""


class RuleBackend:
    """A deterministic in-process backend: ``answer(request)`` gives the text, or an ``LLMError`` to raise.

    Like the real backends it fills ``choice`` only with one of the request's choices and ``parsed`` only
    with JSON.
    """

    spec = "rules"

    def __init__(self, answer: Callable[[LLMRequest], str | LLMError], model: str = "rules") -> None:
        self.answer = answer
        self.model = model
        self.calls: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls.append(request)
        out = self.answer(request)
        if isinstance(out, LLMError):
            raise out
        choice = out if request.choices and out in request.choices else None
        parsed = None
        if request.json_schema is not None:
            try:
                parsed = json.loads(out)
            except json.JSONDecodeError:
                parsed = None
        return LLMResponse(text=out, choice=choice, parsed=parsed, backend=self.spec, model=self.model)
