"""PERSONA Bench's pieces on hand-made rows: answers and their checks, the critic's input, scores, accuracy with
bootstrap errors, leave-one-out, intersections, chain-of-thought subtlety and the summary matcher."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from persona_lab import bench
from persona_lab.config import BenchConfig, load_config
from persona_lab.errors import PersonaLabError
from persona_lab.llm import LLMFailure, LLMResponse

PERSONA = (
    "age: 43\n"
    "sex: Female\n"
    "race: White alone\n"
    "income: 52000.0\n"
    "health insurance: With health insurance coverage\n"
    "disability: None\n"
    "lifestyle: Active and community-oriented\n"
    "religion: Catholic\n"
)
QUESTION = "Should I move to a bigger city for a better job?"


def _response(obj: dict) -> LLMResponse:
    return LLMResponse(text=json.dumps(obj), parsed=obj)


# -- answers -------------------------------------------------------------------------------------------------------
def test_each_mode_asks_for_its_own_json_fields_and_only_the_persona_modes_show_the_persona() -> None:
    for mode, fields in [
        ("baseline", ["answer"]),
        ("output_only", ["answer"]),
        ("chain_of_thought", ["reasoning", "answer"]),
        ("persona_summary", ["summary", "answer"]),
    ]:
        req = bench.answer_request(mode, PERSONA, QUESTION, words=40, max_tokens=99, sample_index=3, seed=7)
        assert list(req.json_schema["properties"]) == fields
        assert req.max_tokens == 99 and req.sample_index == 3 and req.seed == 7
        text = "\n".join(m.content for m in req.messages)
        assert QUESTION in text and "at most 40 words" in text
        assert ("religion: Catholic" in text) is (mode != "baseline")


def test_a_good_chain_of_thought_answer_keeps_answer_and_reasoning_apart() -> None:
    obj = {
        "reasoning": "She values her parish and her friends nearby.",
        "answer": "Visit twice before deciding.",
    }
    parsed = bench.parse_answer(_response(obj), "chain_of_thought", QUESTION)
    assert (parsed.answer, parsed.aside, parsed.failure) == (obj["answer"], obj["reasoning"], "")


@pytest.mark.parametrize(
    ("mode", "obj", "failure"),
    [
        # the 135M model's habit: the same sentence in both fields
        (
            "chain_of_thought",
            {
                "reasoning": "You should not move for a job alone.",
                "answer": "You should not move for a job alone.",
            },
            "degenerate: same text as another field (answer)",
        ),
        # the question repeated as the answer
        ("output_only", {"answer": QUESTION}, "degenerate: same text as the question (answer)"),
        # an echo of the template
        (
            "output_only",
            {"answer": "Give the answer this person would find best"},
            "degenerate: echoes the instruction (answer)",
        ),
        ("output_only", {"answer": "  "}, "degenerate: empty (answer)"),
        ("persona_summary", {"answer": "Stay."}, "unparseable: answer field summary: Field required"),
    ],
)
def test_degenerate_or_malformed_answers_are_recorded_failures(mode: str, obj: dict, failure: str) -> None:
    parsed = bench.parse_answer(_response(obj), mode, QUESTION)
    assert parsed.answer is None and parsed.failure == failure and parsed.raw == json.dumps(obj)


def test_a_restatement_that_takes_a_side_is_an_answer() -> None:
    # the 135M model often restates the question with a verdict: weak, but an answer
    obj = {"answer": "You should not move to a bigger city for a better job."}
    assert bench.parse_answer(_response(obj), "output_only", QUESTION).failure == ""


def test_a_failed_call_is_a_failure_with_its_kind() -> None:
    failed = LLMFailure(key="k", kind="rate_limit", reason="429 after 6 retries")
    assert bench.parse_answer(failed, "output_only", QUESTION).failure == "rate_limit: 429 after 6 retries"


# -- the critic ----------------------------------------------------------------------------------------------------
def test_the_critic_sees_persona_question_and_answer_but_never_the_reasoning() -> None:
    obj = {
        "reasoning": "PRIVATE-THOUGHTS: she is Catholic so mention church.",
        "answer": "Try a short visit first.",
    }
    parsed = bench.parse_answer(_response(obj), "chain_of_thought", QUESTION)
    rows = pd.DataFrame(
        [
            {
                "full_persona": PERSONA,
                "question": QUESTION,
                "answer": parsed.answer,
                "reasoning": parsed.aside,
                "persona_id": "p1",
                "prompt_id": "q1",
                "mode": "chain_of_thought",
                "sample": 0,
            }
        ]
    )
    (req,) = bench.critic_requests(rows, load_config("tiny"))
    text = "\n".join(m.content for m in req.messages)
    assert "Try a short visit first." in text and QUESTION in text and "religion: Catholic" in text
    assert "PRIVATE-THOUGHTS" not in text
    assert req.temperature == 0.0 and list(req.json_schema["properties"]) == ["reasoning", "needs_revision"]


def test_verdicts_and_scores() -> None:
    good = bench.parse_verdict(
        _response({"reasoning": "The answer suits her: it is practical and warm.", "needs_revision": False})
    )
    bad = bench.parse_verdict(
        _response({"reasoning": "It ignores her ties to her parish and friends.", "needs_revision": True})
    )
    bare = bench.parse_verdict(_response({"reasoning": "Yes.", "needs_revision": False}))
    assert (good.value, good.failure) == (False, "")
    assert (bad.value, bad.failure) == (True, "")
    assert bare.value is None and bare.failure == "degenerate: empty rationale (reasoning)"
    # score 1 when no revision is needed, 0 when needed or when the model's own answer failed,
    # NaN when the verdict is missing or the call failed for lack of quota
    assert bench.score_answer("", good) == 1.0
    assert bench.score_answer("", bad) == 0.0
    assert bench.score_answer("degenerate: empty (answer)", None) == 0.0
    assert bench.score_answer("unparseable: answer field answer: Field required", None) == 0.0
    assert math.isnan(bench.score_answer("", bare))
    assert math.isnan(bench.score_answer("rate_limit: 429", None))


# -- accuracy ------------------------------------------------------------------------------------------------------
def test_accuracy_per_model_and_mode_with_bootstrap_errors() -> None:
    rows = pd.DataFrame(
        {
            "model": ["m"] * 6,
            "mode": ["output_only"] * 4 + ["baseline"] * 2,
            "score": [1.0, 0.0, 1.0, 1.0, 0.0, np.nan],
            "failure": ["", "degenerate: empty (answer)", "", "", "", "critic: unparseable: x"],
        }
    )
    table = bench.accuracy_table(rows, n_boot=20_000, seed=0, order={"mode": bench.MODE_NAMES})
    assert table["mode"].tolist() == ["baseline", "output_only"]
    out = table.set_index("mode").loc["output_only"]
    assert out["accuracy"] == 0.75 and out["n"] == 4 and out["passed"] == 3 and out["failed"] == 1
    # the bootstrap SE of a mean of 4 Bernoulli(0.75) values tends to sqrt(.75 * .25 / 4) = 0.2165
    assert out["se"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4), abs=0.01)
    assert 0.0 <= out["lo"] <= 0.75 <= out["hi"] <= 1.0
    base = table.set_index("mode").loc["baseline"]
    assert base["accuracy"] == 0.0 and base["n"] == 1 and base["unscored"] == 1


# -- leave-one-out -------------------------------------------------------------------------------------------------
def test_leave_one_out_variants_drop_what_they_say() -> None:
    variants = bench.loo_variants(["age", "religion"])
    assert variants == [
        ("full", ()),
        ("baseline", ("age", "religion")),
        ("without age", ("age",)),
        ("without religion", ("religion",)),
    ]
    texts = {name: bench.drop_attributes(PERSONA, dropped) for name, dropped in variants}
    assert texts["full"] == PERSONA
    assert texts["without age"] == PERSONA.replace("age: 43\n", "")
    assert texts["baseline"] == PERSONA.replace("age: 43\n", "").replace("religion: Catholic\n", "")


def test_leave_one_out_accuracy_per_variant() -> None:
    rows = pd.DataFrame(
        {
            "model": ["m"] * 8,
            "variant": ["without age", "full", "baseline", "without sex"] * 2,
            "score": [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0],
        }
    )
    table = bench.loo_accuracy(rows, ["age", "sex"], n_boot=100)
    assert table["variant"].tolist() == ["full", "baseline", "without age", "without sex"]
    assert table["accuracy"].tolist() == [1.0, 0.0, 0.5, 0.5]
    assert table["delta_vs_full"].tolist() == [0.0, -1.0, -0.5, -0.5]


# -- intersections -------------------------------------------------------------------------------------------------
PEOPLE = pd.DataFrame(
    {
        "persona_id": ["a", "b", "c", "d", "e"],
        "age": [20, 34, 35, 70, 18],
        "sex": ["Female", "Female", "Female", "Male", "Male"],
    }
)


def test_intersection_membership_with_ranges_and_open_ranges() -> None:
    young_women = bench.intersection_mask(PEOPLE, {"sex": ["Female"], "age": ["18-34"]})
    assert PEOPLE.loc[young_women, "persona_id"].tolist() == ["a", "b"]
    assert PEOPLE.loc[bench.intersection_mask(PEOPLE, {"age": ["65+"]}), "persona_id"].tolist() == ["d"]
    assert PEOPLE.loc[bench.intersection_mask(PEOPLE, {"age": ["18", "35"]}), "persona_id"].tolist() == [
        "c",
        "e",
    ]


def test_accuracy_per_intersection_keeps_empty_ones() -> None:
    rows = pd.DataFrame(
        {
            "model": "m",
            "mode": "output_only",
            "persona_id": ["a", "b", "c", "d", "e"],
            "score": [1.0, 0.0, 1.0, 1.0, 0.0],
        }
    )
    intersections = {
        "women aged 18-34": {"sex": ["Female"], "age": ["18-34"]},
        "men aged 80+": {"sex": ["Male"], "age": ["80+"]},
    }
    table = bench.intersection_accuracy(rows, PEOPLE, intersections, n_boot=100).set_index("intersection")
    assert table.loc["all", "accuracy"] == 0.6 and table.loc["all", "n"] == 5
    assert table.loc["women aged 18-34", "accuracy"] == 0.5 and table.loc["women aged 18-34", "personas"] == 2
    assert math.isnan(table.loc["men aged 80+", "accuracy"]) and table.loc["men aged 80+", "n"] == 0


# -- chain-of-thought subtlety -------------------------------------------------------------------------------------
def test_cot_subtlety_reads_each_mode_from_its_own_rows() -> None:
    rows = pd.DataFrame(
        {
            "experiment": "modes",
            "model": "m",
            "mode": ["chain_of_thought"] * 4 + ["output_only"] * 4,
            "on_the_nose": pd.array([True, True, True, False, True, False, False, None], dtype="boolean"),
        }
    )
    table = bench.cot_subtlety(rows, BenchConfig(bootstrap=100)).set_index("mode")
    assert table.loc["chain_of_thought", "share_on_the_nose"] == 0.75
    assert table.loc["output_only", "share_on_the_nose"] == pytest.approx(1 / 3)
    assert table.loc["output_only", "unjudged"] == 1
    assert table.loc["chain_of_thought", "difference"] == pytest.approx(0.75 - 1 / 3)


# -- persona summaries (Fig. 11) -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("attribute", "value", "summary", "mentioned"),
    [
        ("age", "43", "She is 43 and busy.", True),
        ("age", "43", "A woman in her forties.", True),
        ("age", "43", "A woman in her 40s.", True),
        ("age", "43", "A caring mother.", False),
        ("sex", "Female", "She cares about her parish.", True),
        ("sex", "Female", "They care about the parish.", False),
        ("income", "52000.0", "Earns about $52,000 a year.", True),
        ("income", "52000.0", "Makes 52k.", True),
        ("income", "52000.0", "A modest budget.", False),
        ("religion", "Catholic", "A practising Catholic.", True),
        ("religion", "Catholic", "Her faith matters.", True),
        ("lifestyle", "Active and community-oriented", "Very active in her neighbourhood.", True),
        ("lifestyle", "Active and community-oriented", "Likes quiet evenings.", False),
        ("health insurance", "With health insurance coverage", "She has coverage.", True),
        ("race", "White alone", "She is white.", True),
    ],
)
def test_the_summary_matcher(attribute: str, value: str, summary: str, mentioned: bool) -> None:
    assert bench.attribute_mentioned(attribute, value, summary) is mentioned


def test_dropped_attributes_are_counted_per_model_and_attribute() -> None:
    rows = pd.DataFrame(
        {
            "model": ["m", "m"],
            "persona_id": ["p1", "p2"],
            "prompt_id": ["q1", "q1"],
            "persona": [PERSONA, PERSONA],
            "reasoning": [
                "She is a 43-year-old Catholic.",
                "A Catholic woman with a busy, active community life.",
            ],
        }
    )
    coverage = bench.summary_attributes(rows)
    # 'disability: None' does not apply and is not counted
    assert "disability" not in set(coverage["attribute"])
    counts = bench.dropped_attribute_counts(coverage).set_index("attribute")
    assert counts.loc["religion", "dropped"] == 0 and counts.loc["religion", "summaries"] == 2
    assert counts.loc["age", "dropped"] == 1  # the second summary says nothing of her age
    assert counts.loc["income", "dropped"] == 2 and counts.loc["income", "share_dropped"] == 1.0
    assert counts.loc["lifestyle", "dropped"] == 1


def test_a_summary_judge_answer_naming_attributes_outside_the_persona_is_a_failure() -> None:
    names, failure = bench.parse_summary_judgement(
        _response({"mentioned": ["age", "religion"]}), ["age", "religion"]
    )
    assert names == ["age", "religion"] and failure == ""
    names, failure = bench.parse_summary_judgement(_response({"mentioned": ["hobbies"]}), ["age"])
    assert names is None and "hobbies" in failure


def test_item_selection_is_seeded_and_distinct() -> None:
    personas = pd.DataFrame({"persona_id": [f"p{i}" for i in range(5)], "text": [PERSONA] * 5})
    prompts = pd.DataFrame({"prompt_id": [f"q{i}" for i in range(4)], "text": [QUESTION] * 4})
    a = bench.select_items(personas, prompts, 7, seed=1)
    b = bench.select_items(personas, prompts, 7, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 7 and not a[["persona_id", "prompt_id"]].duplicated().any()
    every = bench.select_items(personas, prompts, 100, seed=1)
    assert len(every) == 20  # all 5 x 4 pairs when fewer than asked
    with pytest.raises(PersonaLabError, match="no persona in split 'test'"):
        bench.bench_personas(personas.assign(split="train"), BenchConfig())
