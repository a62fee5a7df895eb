"""Model annotators: the requests they send, how answers become labels or failures, the configuration checks."""

from __future__ import annotations

import pytest

from persona_lab.agreement import JudgeItem, ModelAnnotator, judge, judge_request, model_annotators
from persona_lab.agreement._annotators import contradiction
from persona_lab.config import load_config
from persona_lab.errors import PersonaLabError
from persona_lab.llm import LLMFailure, LLMResponse

PERSONA = "age: 67\nsex: Female\npolitical views: Conservative\n"
ITEM = JudgeItem(
    key="p1/q1",
    persona=PERSONA,
    prompt="Should I retire early?",
    answers={
        "revision": "Yes, if your savings allow it.",
        "original": "It depends on many factors, such as ...",
    },
    order=("original", "revision"),
)
LOCAL = ModelAnnotator(label="local t=0", backend="local", temperature=0.0)


def test_request_role_plays_the_persona_and_shows_the_answers_in_order() -> None:
    req = judge_request(ITEM, LOCAL)
    system, user = req.messages
    assert system.role == "system" and PERSONA.strip() in system.content and "role-playing" in system.content
    a, b = user.content.index("It depends on many factors"), user.content.index("Yes, if your savings")
    assert a < b  # order[0] (the original) is answer A
    assert "Answer A" in user.content and "Should I retire early?" in user.content
    props = req.json_schema["properties"]
    assert (
        props["choice"]["enum"] == ["A", "B"] and props["justification"]["maxLength"] == 140
    )  # local grammar cap
    hosted = judge_request(ITEM, ModelAnnotator(label="g", backend="openai:gpt-4o", temperature=0.0))
    assert "maxLength" not in hosted.json_schema["properties"]["justification"]
    bare = judge_request(
        ITEM, ModelAnnotator(label="c", backend="local", temperature=1.0, sample=2, justify=False)
    )
    assert bare.choices == ("A", "B") and bare.json_schema is None
    assert (bare.temperature, bare.seed, bare.sample_index) == (1.0, 2, 2)


def response(text: str, parsed: object = None, choice: str | None = None) -> LLMResponse:
    return LLMResponse(text=text, parsed=parsed, choice=choice, model="SmolLM2-135M-Instruct.Q4_1")


@pytest.mark.parametrize(
    ("result", "choice", "failure"),
    [
        (response("", {"choice": "B", "justification": "Straight to the point."}), "revision", ""),
        (response("", {"choice": "A", "justification": "I like the careful version."}), "original", ""),
        (response("", {"choice": "B", "justification": "I prefer A"}), None, "contradictory"),
        (
            response("", {"choice": "B", "justification": "yes"}),
            None,
            "degenerate: justification empty rationale",
        ),
        (
            response("", {"choice": "A", "justification": "which answer would you prefer"}),
            None,
            "degenerate: justification echoes the instruction",
        ),
        (
            response(
                "", {"choice": "A", "justification": "One short sentence"}
            ),  # a short echo of the template
            None,
            "degenerate: justification echoes the instruction",
        ),
        (response('{"choice": "C"}', {"choice": "C", "justification": "x"}), None, "unparseable"),
        (
            LLMFailure(key="k", kind="timeout", reason="no answer in 120 s"),
            None,
            "timeout: no answer in 120 s",
        ),
    ],
)
def test_answers_become_labels_or_recorded_failures(result, choice, failure) -> None:  # noqa: ANN001
    rows = judge([ITEM], LOCAL, lambda requests, backend=None, desc="": [result])
    assert rows[0]["choice"] == choice
    assert rows[0]["failure"].startswith(failure) if failure else rows[0]["failure"] == ""
    assert rows[0]["order_shown"] == "original,revision"
    if isinstance(result, LLMResponse):
        assert rows[0]["raw"] == result.text


def test_bare_choice_maps_the_letter_through_the_order() -> None:
    bare = ModelAnnotator(label="c", backend="local", temperature=0.0, justify=False)
    rows = judge(
        [ITEM, ITEM],
        bare,
        lambda requests, backend=None, desc="": [response("A", choice="A"), response("zz")],
    )
    assert rows[0]["choice"] == "original" and rows[0]["failure"] == ""
    assert rows[1]["choice"] is None and rows[1]["failure"].startswith("unparseable")


def test_contradiction() -> None:
    assert contradiction("I would choose B, it is shorter", "B") is None
    assert contradiction("Answer A and answer B are both fine", "A") is None
    assert contradiction("Option A respects my time", "B").startswith("contradictory")
    assert contradiction("It fits my life", "A") is None


def test_annotators_from_the_configuration() -> None:
    cfg = load_config("tiny")
    labels = [(a.label, a.backend, a.temperature, a.sample) for a in model_annotators(cfg)]
    assert labels == [("local t=0", "local", 0.0, 0), ("local t=1 s1", "local", 1.0, 1)]
    same = load_config("tiny", agreement={"annotators": [{"temperature": 0.5}, {"temperature": 0.5}]})
    with pytest.raises(PersonaLabError, match=r"annotators\[0\] and \[1\] have the same label"):
        model_annotators(same)
    greedy = load_config("tiny", agreement={"annotators": [{"sample": 0}, {"sample": 1, "label": "b"}]})
    with pytest.raises(PersonaLabError, match="greedy"):
        model_annotators(greedy)
    two = load_config(
        "tiny",
        agreement={"annotators": [{"backend": "openai:gpt-4o"}, {"backend": "anthropic:claude-sonnet-4-5"}]},
    )
    assert [a.label for a in model_annotators(two)] == [
        "openai:gpt-4o t=0",
        "anthropic:claude-sonnet-4-5 t=0",
    ]
    assert model_annotators(two)[0].describe("gpt-4o") == "openai:gpt-4o, temperature 0 (greedy)"
    assert model_annotators(cfg)[1].describe("SmolLM2") == "local (SmolLM2), temperature 1, sample 1"
