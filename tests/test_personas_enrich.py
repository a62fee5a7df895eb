"""LLM enrichment and the LLM consistency check: prompts, schemas, failures, degenerate answers, mocked OpenAI,
the local model, the redraw loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pandas as pd
import pytest

from persona_lab.config import RunConfig
from persona_lab.llm import (
    LLMError,
    LLMRequest,
    LLMResponse,
    ResponseCache,
    degenerate_fields,
    degenerate_reason,
    get_backend,
    request_key,
)
from persona_lab.personas import _prompting
from persona_lab.personas._consistency import check_consistency, complete_personas
from persona_lab.personas._enrich import enrich_personas, enrichment_before_after
from persona_lab.personas._prompting import (
    ConsistencyVerdict,
    PersonaEnrichment,
    age_notes,
    consistency_instructions,
    consistency_request,
    enrichment_instructions,
    enrichment_request,
    persona_profile,
    persona_seeds,
)
from persona_lab.personas._quality import check_quality
from persona_lab.personas._schema import OPEN_ENDED_KEYS
from persona_lab.personas._text import parse_persona, render_texts

BIG_FIVE = (
    "Openness: High, Conscientiousness: Average, Extraversion: Low, Agreeableness: High, Neuroticism: Low"
)


def _person(pid: str, age: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "persona_id": pid,
        "age": age,
        "sex": "Female",
        "race": "White alone",
        "ancestry": "Irish",
        "household language": "English only",
        "education": "Bachelor's degree",
        "employment status": "Civilian employed, at work",
        "class of worker": "Local government employee",
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
        "hearing difficulty": None,
        "big five scores": BIG_FIVE,
        "religion": "Catholic",
        "seed_quirks": ["collects postcards", "hums while cooking"],
        "seed_core_values": ["fairness", "curiosity", "thrift"],
        "seed_mannerisms": ["nods slowly while listening", "speaks in questions"],
        "split": "train",
    }
    for key in OPEN_ENDED_KEYS:
        row[key] = None
    row.update(over)
    return row


def personas_frame() -> pd.DataFrame:
    """An adult teacher, an 8-year-old and a 15-year-old (the three age regimes of the prompt)."""
    child = {
        "education": "Grade 3",
        "employment status": "Not applicable",
        "class of worker": "Not applicable",
        "industry category": "Not applicable",
        "occupation category": "Not applicable",
        "income": float("nan"),
        "marital status": "Never married or under 15 years old",
    }
    frame = pd.DataFrame(
        [
            _person("p00001", 41),
            _person("p00002", 8, **child),
            _person("p00003", 15, **(child | {"education": "Grade 10", "income": 0.0})),
        ]
    )
    frame["text"] = render_texts(frame)
    return frame


ANSWERS: dict[str, dict[str, str]] = {
    "p00001": {
        "detailed_job_description": "Teaches fourth-grade reading and math, coaches the spelling bee",
        "defining_quirks": "Sends postcards to former students",
        "mannerisms": "Answers questions with questions",
        "personal_time": "Hiking with her kids and cooking on weekends",
        "lifestyle": "Busy, family-centered and frugal",
        "ideology": "Moderate",
        "political_views": "Independent",
    },
    "p00002": {
        "detailed_job_description": "Third-grade student",
        "defining_quirks": "Names every backyard bird",
        "mannerisms": "Hums while drawing",
        "personal_time": "Drawing, climbing trees, cartoons",
        "lifestyle": "Active and playful",
        "ideology": "Liberal",  # the age rule overrides this with "Not applicable"
        "political_views": "Democrat",
    },
    "p00003": {
        "detailed_job_description": "High school sophomore, babysits on weekends",
        "defining_quirks": "Keeps a bullet journal",
        "mannerisms": "Speaks quickly when excited",
        "personal_time": "Soccer practice and video calls with friends",
        "lifestyle": "Busy with school and sports",
        "ideology": "Still forming",
        "political_views": "Too young to vote",
    },
}


class ScriptedBackend:
    """A backend answering by persona (the request's user message names it); counts calls."""

    def __init__(self, answers: dict[str, Any], spec: str = "scripted:test") -> None:
        self.spec = spec
        self.model = "scripted"
        self.answers = answers
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        user = request.messages[-1].content
        for marker, answer in self.answers.items():
            if marker in user:
                if isinstance(answer, Exception):
                    raise answer
                return LLMResponse(
                    text=json.dumps(answer), parsed=answer, backend=self.spec, model=self.model
                )
        raise AssertionError(f"no scripted answer for {user[:80]!r}")


def _by_age(answers: dict[str, Any]) -> dict[str, Any]:
    ages = {"p00001": 41, "p00002": 8, "p00003": 15}
    return {f"age: {ages[pid]}\n": a for pid, a in answers.items()}


def test_persona_profile_lists_procedural_attributes_in_persona_order() -> None:
    row = personas_frame().iloc[0].to_dict()
    profile = persona_profile(row).splitlines()
    # open-ended keys (None), the absent optional key and non-PERSONA columns are left out
    assert len(profile) == 21  # 19 census keys + big five scores + religion
    assert "disability: None" in profile  # a census value, not a missing one
    assert profile[0] == "age: 41"
    assert "income: $52,000 per year" in profile
    assert profile[-2] == f"big five scores: {BIG_FIVE}"
    assert profile[-1] == "religion: Catholic"
    assert not any(
        line.startswith(("ideology", "hearing difficulty", "persona_id", "seed_")) for line in profile
    )
    child = persona_profile(personas_frame().iloc[1].to_dict())
    assert "income" not in child  # NaN income (under 15) is absent


def test_persona_seeds_and_big_five_fallback() -> None:
    row = personas_frame().iloc[0].to_dict()
    assert persona_seeds(row) == (
        "core values: fairness; curiosity; thrift\n"
        "mannerisms: nods slowly while listening; speaks in questions\n"
        "quirks: collects postcards; hums while cooking"
    )
    assert persona_seeds({"age": 3}) == "(none)"
    levels = {"openness": "High", "conscientiousness": "Average", "extraversion": "Low"}
    levels |= {"agreeableness": "High", "neuroticism": "Low"}
    assert (
        persona_profile({"age": 30, "big five scores": None, **levels})
        == f"age: 30\nbig five scores: {BIG_FIVE}"
    )


def test_requests_carry_strict_json_schemas_and_age_notes() -> None:
    frame = personas_frame()
    cfg = RunConfig(seed=7)
    adult, child, teen = (enrichment_request(r, config=cfg) for r in frame.to_dict("records"))
    schema = PersonaEnrichment.model_json_schema()
    assert adult.json_schema == schema
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(schema["properties"])
    assert [k.replace("_", " ") for k in schema["properties"]] == list(OPEN_ENDED_KEYS)
    assert adult.seed == 7 and adult.temperature == 0.0 and adult.tag == "p00001"
    assert adult.messages[0].content == _prompting.template("enrich_system")
    assert age_notes(41) == "" and age_notes(None) == ""
    assert (
        "year-old child" not in adult.messages[1].content
        and "too young to vote" not in adult.messages[1].content
    )
    assert 'write "Not applicable" for ideology, political_views' in child.messages[1].content
    assert "too young to vote" in teen.messages[1].content
    assert "collects postcards" in adult.messages[1].content
    verdict = consistency_request(frame.iloc[0].to_dict(), config=cfg)
    assert verdict.json_schema == ConsistencyVerdict.model_json_schema()
    assert list(verdict.json_schema["properties"]) == ["reason", "consistent"]


def test_changing_a_template_changes_the_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    row = personas_frame().iloc[0].to_dict()
    before = request_key(enrichment_request(row), "openai:gpt-4o", "gpt-4o")
    original = _prompting.load_template

    def edited(package: str, name: str) -> str:
        return original(package, name) + ("\nBe brief." if name == "enrich_system.txt" else "")

    monkeypatch.setattr(_prompting, "load_template", edited)
    after = request_key(enrichment_request(row), "openai:gpt-4o", "gpt-4o")
    assert before != after


def test_enrich_personas_fills_fields_applies_age_rules_and_renders_text() -> None:
    frame = personas_frame()
    backend = ScriptedBackend(_by_age(ANSWERS))
    out = enrich_personas(frame, backend, config=RunConfig(), progress=False)
    assert backend.calls == 3
    assert out["enriched"].tolist() == [True, True, True]
    assert out["enrichment_failure"].tolist() == ["", "", ""]
    assert out.loc[0, "detailed job description"] == ANSWERS["p00001"]["detailed_job_description"]
    # the 8-year-old: ideology and political views are "Not applicable" whatever the model says
    assert (out.loc[1, "ideology"], out.loc[1, "political views"]) == ("Not applicable", "Not applicable")
    assert out.loc[1, "detailed job description"] == "Third-grade student"  # 8 >= 5: the model's text
    assert out.loc[2, "political views"] == "Too young to vote"  # a teenager keeps the model's text
    parsed = parse_persona(out.loc[0, "text"])
    assert parsed.get("lifestyle") == "Busy, family-centered and frugal"
    assert parsed.get("political views") == "Independent"
    assert frame["ideology"].isna().all()  # the input is not modified
    report = check_quality(out).summary()
    assert report["missing_values"] == 0 and report["lean_conflicts"] == 0


def test_enrichment_failures_are_recorded_not_dropped() -> None:
    frame = personas_frame()
    answers = _by_age(ANSWERS)
    answers["age: 8\n"] = LLMError("unparseable", "answer is not valid JSON")
    bad = dict(ANSWERS["p00003"])
    del bad["lifestyle"]  # outside the schema: a missing key
    answers["age: 15\n"] = bad
    out = enrich_personas(frame, ScriptedBackend(answers), progress=False)
    assert len(out) == 3
    assert out["enriched"].tolist() == [True, False, False]
    assert out.loc[1, "enrichment_failure"] == "unparseable: answer is not valid JSON"
    assert out.loc[2, "enrichment_failure"] == "unparseable: answer field lifestyle: Field required"
    assert out.loc[1, list(OPEN_ENDED_KEYS)].isna().all() and out.loc[2, list(OPEN_ENDED_KEYS)].isna().all()
    assert out.loc[1, "enrichment_raw"] == "" and json.loads(out.loc[2, "enrichment_raw"]) == bad
    assert "ideology:" not in out.loc[1, "text"]


def test_enrich_limit_only_calls_the_first_personas() -> None:
    backend = ScriptedBackend(_by_age(ANSWERS))
    out = enrich_personas(personas_frame(), backend, config=RunConfig(personas={"enrich": 1}), progress=False)
    assert backend.calls == 1
    assert out["enriched"].tolist() == [True, False, False]
    assert out["enrichment_failure"].tolist() == ["", "", ""]
    none = enrich_personas(personas_frame(), backend, limit=0, progress=False)
    assert backend.calls == 1 and not none["enriched"].any()


def test_before_after_is_tidy() -> None:
    frame = personas_frame()
    out = enrich_personas(frame, ScriptedBackend(_by_age(ANSWERS)), progress=False)
    view = enrichment_before_after(frame, out, persona_ids=["p00002"])
    assert list(view.columns) == ["persona_id", "attribute", "before", "after", "enrichment_failure"]
    assert view["attribute"].tolist() == list(OPEN_ENDED_KEYS)
    assert (view["before"] == "").all()
    assert view.set_index("attribute").loc["ideology", "after"] == "Not applicable"
    assert len(enrichment_before_after(frame, out)) == 3 * 7


def test_check_consistency_verdicts_and_failures() -> None:
    frame = personas_frame()
    answers = {
        "age: 41\n": {"reason": "No conflicting attributes", "consistent": True},
        "age: 8\n": {"reason": "An 8-year-old cannot  be\n married", "consistent": False},
        "age: 15\n": LLMError("refusal", "the model declined"),
    }
    verdicts = check_consistency(frame, ScriptedBackend(answers), progress=False)
    assert verdicts["persona_id"].tolist() == ["p00001", "p00002", "p00003"]
    assert verdicts["consistent"].tolist()[:2] == [True, False]
    assert pd.isna(verdicts["consistent"].iloc[2])  # a failed check never rejects
    assert verdicts["reason"].tolist() == ["No conflicting attributes", "An 8-year-old cannot be married", ""]
    assert verdicts["check_failure"].tolist() == ["", "", "refusal: the model declined"]
    assert json.loads(verdicts.loc[1, "raw_answer"]) == answers["age: 8\n"]
    assert verdicts.loc[2, "raw_answer"] == ""  # no answer to keep


BOILERPLATE = "The person's lifestyle is a mix of traits that make them interesting and unique"
"""What SmolLM2-135M wrote into all seven open-ended fields of a persona in the tiny run."""


def test_degenerate_enrichment_is_a_recorded_failure_with_its_text() -> None:
    answers = _by_age(ANSWERS)
    answers["age: 41\n"] = {field: BOILERPLATE for field in PersonaEnrichment.model_fields}
    # the 15-year-old's mannerisms repeat the template's description of the field
    echo = "how the person typically speaks or behaves around others"
    answers["age: 15\n"] = ANSWERS["p00003"] | {"mannerisms": echo}
    out = enrich_personas(personas_frame(), ScriptedBackend(answers), progress=False)
    assert out["enriched"].tolist() == [False, True, False]
    assert out.loc[0, "enrichment_failure"] == (
        "degenerate: same text as another field (detailed job description, defining quirks, mannerisms, "
        "personal time, lifestyle, ideology, political views)"
    )
    assert out.loc[2, "enrichment_failure"] == "degenerate: echoes the instruction (mannerisms)"
    # the raw answers are kept; none of their text reaches the personas
    assert json.loads(out.loc[0, "enrichment_raw"]) == answers["age: 41\n"]
    assert json.loads(out.loc[2, "enrichment_raw"])["mannerisms"] == echo
    assert out.loc[[0, 2], list(OPEN_ENDED_KEYS)].isna().all().all()
    assert "lifestyle:" not in out.loc[0, "text"] and "mannerisms:" not in out.loc[2, "text"]
    assert (
        out.loc[1, "enrichment_failure"] == ""
        and json.loads(out.loc[1, "enrichment_raw"]) == ANSWERS["p00002"]
    )


def test_an_echoed_or_empty_reason_is_a_failed_check_not_a_verdict() -> None:
    answers = {
        "age: 41\n": {"reason": "Is this profile self-consistent?", "consistent": False},
        "age: 8\n": {"reason": "true", "consistent": True},
        "age: 15\n": {"reason": "No conflicting attributes", "consistent": True},
    }
    verdicts = check_consistency(personas_frame(), ScriptedBackend(answers), progress=False)
    assert verdicts["check_failure"].tolist() == [
        "degenerate: echoes the instruction",
        "degenerate: empty rationale",
        "",
    ]
    assert verdicts["consistent"].isna().tolist() == [True, True, False]  # never a rejection
    assert verdicts["reason"].tolist() == ["", "", "No conflicting attributes"]
    assert json.loads(verdicts.loc[0, "raw_answer"])["reason"] == "Is this profile self-consistent?"


# --- the real-backend path: the official openai SDK against a mocked HTTP transport -----------------------


def _completion(content: str, prompt_tokens: int = 420, completion_tokens: int = 95) -> dict[str, Any]:
    """A chat.completion body shaped like the OpenAI API's."""
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1732900000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


class MockOpenAI:
    """Answers chat completions by persona age; records every request body."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.url.path.endswith("/chat/completions")
        body = json.loads(request.content)
        self.bodies.append(body)
        user = body["messages"][1]["content"]
        for marker, content in self.answers.items():
            if marker in user:
                return httpx2.Response(200, json=_completion(content))
        return httpx2.Response(
            400, json={"error": {"message": "unexpected", "type": "invalid_request_error"}}
        )


def _openai(handler: MockOpenAI, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-enrich")
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return get_backend("openai:gpt-4o", http_client=client)


def test_enrich_through_openai_sdk_with_cache_replay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    answers = {f"age: {a}\n": json.dumps(ANSWERS[p]) for p, a in (("p00001", 41), ("p00002", 8))}
    answers["age: 15\n"] = '{"detailed_job_description": "Student", "lifestyle": 3}'  # outside the schema
    handler = MockOpenAI(answers)
    cache = ResponseCache(tmp_path / "llm_cache.sqlite")
    out = enrich_personas(personas_frame(), _openai(handler, monkeypatch), cache=cache, progress=False)
    # 3 calls + 1 repair attempt for the malformed answer (which repeats the same bad answer)
    assert len(handler.bodies) == 4
    first = handler.bodies[0]
    assert first["model"] == "gpt-4o" and first["temperature"] == 0.0
    fmt = first["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == PersonaEnrichment.model_json_schema()
    assert out["enriched"].tolist() == [True, True, False]
    assert out.loc[0, "mannerisms"] == "Answers questions with questions"
    assert out.loc[1, "political views"] == "Not applicable"
    assert out.loc[2, "enrichment_failure"].startswith("unparseable: after one repair attempt")
    # rerun: the two answers replay from the cache; at most the failed persona is asked again (whether a
    # recorded failure is retried is the runner's policy)
    again = enrich_personas(personas_frame(), _openai(handler, monkeypatch), cache=cache, progress=False)
    assert all("age: 15\n" in body["messages"][1]["content"] for body in handler.bodies[4:])
    pd.testing.assert_frame_equal(again, out)
    cache.close()


def test_consistency_through_openai_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = MockOpenAI(
        {
            "age: 41\n": '{"reason": "No conflicting attributes", "consistent": true}',
            "age: 8\n": '{"reason": "An 8-year-old in grade 3 is fine", "consistent": true}',
            "age: 15\n": '{"reason": "A 15-year-old with a doctorate", "consistent": false}',
        }
    )
    verdicts = check_consistency(personas_frame(), _openai(handler, monkeypatch), progress=False)
    assert verdicts["consistent"].tolist() == [True, True, False]
    assert verdicts["check_failure"].tolist() == ["", "", ""]
    assert (
        handler.bodies[0]["response_format"]["json_schema"]["schema"]
        == ConsistencyVerdict.model_json_schema()
    )


# --- the local model (SmolLM2-135M via llama.cpp): weak, but real ------------------------------------------


@pytest.mark.local_model
@pytest.mark.slow
def test_local_model_enrichment_and_check(tmp_path: Path) -> None:
    frame = personas_frame().iloc[[0, 2]].reset_index(drop=True)
    cache = tmp_path / "llm_cache.sqlite"
    out = enrich_personas(frame, "local", cache=cache, progress=False)
    assert len(out) == 2
    # The 135M model mostly writes "The person is a person of faith." into several fields, or the
    # schema's own descriptions: recorded as degenerate failures, never as enriched personas.
    for _, row in out.iterrows():  # every persona is either enriched or carries its failure
        assert row["enriched"] != (row["enrichment_failure"] != "")
        if row["enrichment_failure"].startswith("degenerate:"):
            assert row["enrichment_raw"].strip().startswith("{")  # the answer is kept
            assert row[list(OPEN_ENDED_KEYS)].isna().all()
        if row["enriched"]:
            values = {key: row[key] for key in OPEN_ENDED_KEYS}
            assert all(isinstance(v, str) for v in values.values())
            assert degenerate_fields(values, instructions=enrichment_instructions()) == {}
    verdicts = check_consistency(frame, "local", cache=cache, progress=False)
    assert len(verdicts) == 2
    assert all(pd.isna(v) or v in (True, False) for v in verdicts["consistent"])
    failed = verdicts["check_failure"] != ""
    assert (failed == verdicts["consistent"].isna()).all()
    for _, row in verdicts[~failed].iterrows():  # a used verdict has a real reason
        assert (
            degenerate_reason(row["reason"], instructions=consistency_instructions(), rationale=True) is None
        )


# --- the consistency loop: draw, check, redraw, enrich ------------------------------------------------------


class ListSource:
    """A census source drawing uniformly from a few hand-written persons (ages 30-34 and one 97)."""

    def __init__(self) -> None:
        from persona_lab.census._schema import CENSUS_ATTRIBUTES, OPTIONAL_ATTRIBUTES

        keys = (*CENSUS_ATTRIBUTES, *OPTIONAL_ATTRIBUTES)
        people = [_person("", age) for age in (30, 31, 32, 33, 34, 97)]
        self.rows = [
            {k: p.get(k) for k in keys} | {"weight": 1.0, "serialno": "x", "state": "VT"} for p in people
        ]

    def sample(self, n: int, rng: Any) -> pd.DataFrame:
        return pd.DataFrame([self.rows[i] for i in rng.integers(0, len(self.rows), n)])


class LoopBackend:
    """Calls every 97-year-old teacher inconsistent; enriches everyone with the same answer."""

    spec = "scripted:loop"
    model = "scripted"

    def __init__(self) -> None:
        self.checks = 0
        self.enrichments = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if request.json_schema["title"] == "ConsistencyVerdict":
            self.checks += 1
            old = "age: 97\n" in request.messages[-1].content
            answer: dict[str, Any] = {
                "reason": "A 97-year-old teacher at work" if old else "Fine",
                "consistent": not old,
            }
        else:
            self.enrichments += 1
            answer = ANSWERS["p00001"]
        return LLMResponse(text=json.dumps(answer), parsed=answer, backend=self.spec, model=self.model)


def test_complete_personas_redraws_rejected_profiles() -> None:
    backend = LoopBackend()
    done = complete_personas(ListSource(), 30, 3, backend, config=RunConfig(), progress=False, n_train=20)
    personas, rejected, report = done.personas, done.rejected, done.consistency
    assert personas["persona_id"].tolist() == [f"p{i:05d}" for i in range(1, 31)]
    assert (personas["split"] == "train").sum() == 20  # replacements take over their slot's split
    assert report.checked == backend.checks == sum(c for c, _ in report.per_round)
    assert report.rejected == len(rejected) == sum(r for _, r in report.per_round) > 0
    # each round checks exactly the previous round's rejections
    assert all(report.per_round[i + 1][0] == report.per_round[i][1] for i in range(len(report.per_round) - 1))
    assert report.rejection_rate == report.rejected / report.checked
    assert (rejected["age"] == 97).all() and (rejected["reason"] == "A 97-year-old teacher at work").all()
    assert set(rejected["persona_id"]) <= set(personas["persona_id"])
    kept_old = personas["age"] == 97
    assert kept_old.sum() == report.unresolved
    assert (personas.loc[~kept_old, "llm_consistent"] == True).all()  # noqa: E712 - nullable boolean
    assert backend.enrichments == 30 and personas["enriched"].all()
    assert "ideology: Moderate" in personas.loc[0, "text"]
    assert list(rejected.columns[:3]) == ["round", "persona_id", "split"] and rejected.columns[-1] == "reason"
    assert not {"llm_consistent", "consistency_reason", "check_failure", "consistency_raw"} & set(rejected)
    assert (personas["consistency_raw"] != "").all() and report.failed == report.degenerate == 0
    assert "PERSONA: 8.5%" in report.describe()
    # identical on rerun with the same seed
    again = complete_personas(ListSource(), 30, 3, LoopBackend(), progress=False, n_train=20)
    pd.testing.assert_frame_equal(again.personas, personas)


def test_complete_personas_bounded_rounds_keep_unresolved_profiles() -> None:

    with pytest.warns(UserWarning, match="still judged inconsistent"):
        done = complete_personas(
            ListSource(), 30, 3, LoopBackend(), max_rounds=1, enrich=False, progress=False
        )
    first_round = done.consistency.per_round[0]
    assert done.consistency.rounds == 1 and done.consistency.unresolved == first_round[1] > 0
    assert (done.personas["llm_consistent"] == False).sum() == first_round[1]  # noqa: E712
    assert "enriched" not in done.personas.columns
    skipped = complete_personas(
        ListSource(),
        5,
        3,
        LoopBackend(),
        config=RunConfig(personas={"llm_consistency": False}),
        progress=False,
    )
    assert skipped.consistency.checked == 0 and skipped.rejected.empty
    assert skipped.consistency.describe() == "LLM consistency check: not run"


class WidowBackend(LoopBackend):
    """Rejects every widowed profile (a deterministic stand-in for an LLM verdict)."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if request.json_schema["title"] == "ConsistencyVerdict":
            self.checks += 1
            widowed = "marital status: Widowed" in request.messages[-1].content
            answer = {"reason": "widowed" if widowed else "fine", "consistent": not widowed}
            return LLMResponse(text=json.dumps(answer), parsed=answer, backend=self.spec, model=self.model)
        return await super().complete(request)


def test_complete_personas_on_real_pums_round_trips_through_parquet(shared: Path, tmp_path: Path) -> None:
    from persona_lab.census import PumsSource, load_persona_frame
    from persona_lab.io import read_table, write_table

    pums = shared / "pums"
    frame = load_persona_frame(
        [pums / "psam_p56_2018_1yr_WY.csv"], 2018, pums / "PUMS_Data_Dictionary_2018.csv"
    )
    backend = WidowBackend()
    done = complete_personas(
        PumsSource(frame),
        60,
        11,
        backend,
        config=RunConfig(personas={"enrich": 5}),
        progress=False,
    )
    personas = done.personas
    assert len(personas) == 60 and done.consistency.rejected == len(done.rejected) > 0
    assert (done.rejected["marital status"] == "Widowed").all()
    assert (personas["marital status"] != "Widowed").sum() + done.consistency.unresolved == 60
    assert backend.enrichments == 5 and personas["enriched"].sum() == 5
    write_table(personas, tmp_path / "personas.parquet", table="personas")
    back = read_table(tmp_path / "personas.parquet", table="personas")
    assert back["persona_id"].tolist() == personas["persona_id"].tolist()
    assert back["text"].tolist() == personas["text"].tolist()
    assert back["llm_consistent"].dtype == "boolean"
    write_table(done.rejected, tmp_path / "rejected_personas.parquet", table="rejected_personas")
    rejected = read_table(tmp_path / "rejected_personas.parquet", table="rejected_personas")
    assert rejected["reason"].eq("widowed").all() and len(rejected) == done.consistency.rejected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["personas.parquet", "rejected_personas.parquet"]


class EchoBackend(LoopBackend):
    """Answers like the 135M model did in the tiny run: the check's question as its reason, boilerplate in
    every enrichment field."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if request.json_schema["title"] == "ConsistencyVerdict":
            self.checks += 1
            answer: dict[str, Any] = {"reason": "Is this profile self-consistent?", "consistent": False}
        else:
            self.enrichments += 1
            answer = {field: BOILERPLATE for field in PersonaEnrichment.model_fields}
        return LLMResponse(text=json.dumps(answer), parsed=answer, backend=self.spec, model=self.model)


def test_complete_personas_counts_degenerate_answers_as_failures() -> None:
    backend = EchoBackend()
    done = complete_personas(ListSource(), 10, 3, backend, progress=False, n_train=6)
    report = done.consistency
    # ten echoed reasons: ten failed checks, no rejection, so no redraw round
    assert (report.checked, report.rejected, report.rounds) == (10, 0, 1)
    assert report.failed == report.degenerate == 10
    assert "10 check failure(s) (10 degenerate answer(s))" in report.describe()
    personas = done.personas
    assert done.rejected.empty and personas["llm_consistent"].isna().all()
    assert (personas["check_failure"] == "degenerate: echoes the instruction").all()
    assert (personas["consistency_reason"] == "").all()
    assert personas["consistency_raw"].map(lambda t: json.loads(t)["consistent"]).eq(False).all()
    assert backend.enrichments == 10 and not personas["enriched"].any()
    assert personas["enrichment_failure"].str.startswith("degenerate: same text as another field (").all()
    assert personas[list(OPEN_ENDED_KEYS)].isna().all().all()
