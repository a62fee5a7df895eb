"""The LLM stages of prompt curation: controversy filter, topic names, the whole stage, real backends."""

from __future__ import annotations

import json

import httpx2
import pandas as pd
import pytest
from conftest import RuleBackend

from persona_lab.config import LLMConfig, PromptsConfig, RunConfig
from persona_lab.llm import LLMError, LLMFailure, LLMRequest, LLMResponse, ResponseCache, get_backend
from persona_lab.prompts import (
    assign_topics,
    classify_controversy,
    curate_prompts,
    funnel_counts,
    load_prompts,
    rule_filter,
)
from persona_lab.prompts._curate import OUTPUT_COLUMNS
from persona_lab.prompts._filters import parse_controversy
from persona_lab.prompts._topics import TOPIC_COLUMNS, parse_topic_name


def _user(request: LLMRequest) -> str:
    return request.messages[-1].content


TEXTS = [
    "Should abortion be legal in every case?",  # yes
    "What is the best recipe for pancakes?",  # no
    "Is the death penalty ever justified?",  # refusal -> recorded failure
    "Should voting be compulsory for all adults?",  # answers outside yes/no -> recorded failure
    "Hi",  # fails the rule filters, never sent
]


def _controversy_answer(request: LLMRequest) -> str | LLMError:
    text = _user(request)
    if "abortion" in text:
        return "yes"
    if "death penalty" in text:
        return LLMError("refusal", "the model declined to answer")
    if "compulsory" in text:
        return "it depends"
    return "no"


def _df(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"prompt_id": [f"x{i}" for i in range(len(texts))], "text": texts, "source": "test"})


def test_classify_controversy_records_failures_and_counts_them(tmp_path):
    cfg = RunConfig(runs_dir=tmp_path)
    flagged = rule_filter(_df(TEXTS), cfg)
    backend = RuleBackend(_controversy_answer)
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        out = classify_controversy(flagged, backend, cache=cache, config=cfg)
    assert len(backend.calls) == 4  # "Hi" never reaches the model
    request = backend.calls[0]
    assert request.choices == ("yes", "no") and "Would people with different backgrounds" in _user(request)
    assert list(out["controversial"]) == [True, False, None, None, None]
    assert out.loc[2, "llm_failure"] == "refusal: the model declined to answer"
    assert out.loc[3, "llm_failure"].startswith("unparseable: answer outside the choices yes/no")
    assert list(out["dropped_at"]) == [
        None,
        "not_controversial",
        "llm_failure",
        "llm_failure",
        "question_mark",
    ]
    assert list(out["kept"]) == [True, False, False, False, False]
    funnel = funnel_counts(out)
    # loaded 5 -> '?' 4 -> words 4 -> unique 4 -> classified 2 (2 failures) -> controversial 1
    assert list(funnel["stage"]) == [
        "loaded",
        "question_mark",
        "min_words",
        "unique",
        "classified",
        "controversial",
    ]
    assert list(funnel["count"]) == [5, 4, 4, 4, 2, 1]


def test_classification_limit_is_a_seeded_sample(tmp_path):
    texts = [f"Is question number {i} a fair one to ask?" for i in range(10)]
    cfg = RunConfig(runs_dir=tmp_path, seed=5, prompts=PromptsConfig(limit=4))
    flagged = rule_filter(_df(texts), cfg)
    a = classify_controversy(flagged, RuleBackend(lambda r: "yes"), cache=None, config=cfg)
    b = classify_controversy(flagged, RuleBackend(lambda r: "yes"), cache=None, config=cfg)
    assert a["kept"].sum() == 4 and (a["dropped_at"] == "limit").sum() == 6
    assert list(a["kept"]) == list(b["kept"])
    funnel = funnel_counts(a).set_index("stage")["count"]
    assert funnel["within_limit"] == 4 and funnel["controversial"] == 4


def test_parsers_accept_text_answers_and_reject_the_rest():
    def resp(text: str, **kw) -> LLMResponse:
        return LLMResponse(text=text, **kw)

    assert parse_controversy(resp("Yes.")) == (True, None)
    assert parse_controversy(resp("x", choice="no")) == (False, None)
    assert parse_controversy(resp("Maybe yes"))[1].startswith("unparseable")
    fail = LLMFailure(key="k", kind="timeout", reason="no answer in 120 s")
    assert parse_controversy(fail) == (None, "timeout: no answer in 120 s")
    assert parse_topic_name(resp('{"name": "Debating Immigration Policies"}')) == (
        "Debating Immigration Policies",
        None,
    )
    assert parse_topic_name(resp("x", parsed={"name": " Pets. "}))[1] == (
        "unparseable: name 'Pets' does not have 2 to 5 words"
    )
    assert parse_topic_name(resp("The topic is pets"))[1].startswith("unparseable: expected JSON")
    # the template's own instruction, returned as the name: degenerate, not a 4-word name
    assert parse_topic_name(resp('{"name": "(2 to 5 words)"}')) == (
        None,
        "degenerate: echoes the instruction",
    )
    assert parse_topic_name(resp('{"name": "..."}')) == (None, "degenerate: empty")


CATS = [
    "Should cats be kept indoors all day?",
    "Are cats happier living with other cats?",
    "Is it cruel to declaw cats at home?",
]
TAXES = [
    "Should income taxes be higher for the rich?",
    "Is a wealth tax on the rich fair?",
    "Should inheritance taxes be abolished for the rich?",
]


def test_topic_names_from_the_llm_with_tfidf_fallback():
    def namer(request: LLMRequest) -> str | LLMError:
        text = _user(request)
        if "cats" in text.split("Most distinctive words")[0]:
            return '{"name": "Cats as Pets"}'
        return LLMError("server", "503 overloaded")

    backend = RuleBackend(namer)
    df = _df(CATS + TAXES).assign(kept=True)
    out, topics = assign_topics(
        df, "tfidf", 2, seed=0, backend=backend, cache=None, config=LLMConfig(max_retries=0)
    )
    assert len(backend.calls) == 2  # one call per topic
    request = backend.calls[0]
    assert request.json_schema is not None and "Most typical questions" in _user(request)
    by_source = topics.set_index("name_source")
    assert by_source.loc["llm", "topic_name"] == "Cats as Pets"
    assert by_source.loc["tfidf", "topic_name"].startswith("rich")
    assert by_source.loc["tfidf", "name_failure"] == "server: 503 overloaded"
    assert pd.isna(by_source.loc["llm", "name_failure"])
    assert set(out.loc[out["text"].isin(CATS), "topic_name"]) == {"Cats as Pets"}


def test_degenerate_topic_names_fall_back_to_terms_with_the_raw_answer_kept():
    def namer(request: LLMRequest) -> str:
        cats = "cats" in _user(request).split("Most distinctive words")[0]
        return '{"name": "(2 to 5 words)"}' if cats else '{"name": "Taxing the Rich"}'

    df = _df(CATS + TAXES).assign(kept=True)
    _, topics = assign_topics(
        df, "tfidf", 2, seed=0, backend=RuleBackend(namer), config=LLMConfig(max_retries=0)
    )
    assert list(topics.columns) == TOPIC_COLUMNS
    by_source = topics.set_index("name_source")
    cats, taxes = by_source.loc["tfidf"], by_source.loc["llm"]
    assert cats["name_failure"] == "degenerate: echoes the instruction"
    assert cats["name_raw"] == '{"name": "(2 to 5 words)"}' and cats["topic_name"].startswith("cats")
    assert taxes["topic_name"] == "Taxing the Rich" and pd.isna(taxes["name_failure"])
    assert taxes["name_raw"] == '{"name": "Taxing the Rich"}'


def test_curate_prompts_on_embedded_questions_returns_the_tables(tmp_path):
    # Say "no" to the 12 questions of three topic areas, "yes" to the other 60: 60 kept -> 46 / 14.
    questions = load_prompts(None)
    rejected = set(
        questions.loc[
            questions["topic_hint"].isin(["Education", "Work and Careers", "Parenting and Family"]), "text"
        ]
    )
    assert len(rejected) == 12

    def answer(request: LLMRequest) -> str:
        text = _user(request)
        if request.choices:
            return "no" if any(q in text for q in rejected) else "yes"
        return '{"name": "Values and Society"}'  # the same name for every topic: degenerate

    cfg = RunConfig(name="t", runs_dir=tmp_path, seed=1, prompts=PromptsConfig(n_topics=4))
    with ResponseCache(cfg.run_dir) as cache:
        prompts, topics = curate_prompts(cfg, cache, backend=RuleBackend(answer))
    assert list(prompts.columns) == OUTPUT_COLUMNS
    assert prompts["kept"].sum() == 60 and (prompts["dropped_at"] == "not_controversial").sum() == 12
    assert prompts["split"].value_counts().to_dict() == {"train": 46, "heldout": 14}
    assert topics["topic_name"].is_unique and topics["n_prompts"].sum() == 60
    assert topics["topic"].tolist() == [0, 1, 2, 3]
    # one name for four different topics names none of them: each falls back to its own top terms
    assert (topics["name_source"] == "tfidf").all()
    assert (topics["name_failure"] == "degenerate: same text as another item").all()
    assert (topics["name_raw"] == '{"name": "Values and Society"}').all()
    # the stage returns its tables; writing them is the pipeline's job
    assert sorted(p.name for p in cfg.run_dir.iterdir()) == ["llm_cache.sqlite"]
    # A second run replays every answer from the cache.
    backend = RuleBackend(answer)
    with ResponseCache(cfg.run_dir) as cache:
        again, again_topics = curate_prompts(cfg, cache, backend=backend)
    assert backend.calls == []
    pd.testing.assert_frame_equal(again, prompts)
    pd.testing.assert_frame_equal(again_topics, topics)


def test_curate_without_llm_filter_keeps_every_rule_passing_prompt(tmp_path):
    cfg = RunConfig(runs_dir=tmp_path, prompts=PromptsConfig(llm_filter=False, n_topics=3))
    prompts, topics = curate_prompts(cfg, None, backend=RuleBackend(lambda r: '{"name": "Some Topic Here"}'))
    assert prompts["kept"].all() and prompts["controversial"].isna().all()
    assert list(funnel_counts(prompts)["count"]) == [72, 72, 72, 72]


# ---- the OpenAI backend, SDK mocked at the HTTP layer ----------------------------------------------------


def _completion(content: str) -> dict:
    """A chat.completion body shaped like the OpenAI API's."""
    return {
        "id": "chatcmpl-7",
        "object": "chat.completion",
        "created": 1730000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 90, "completion_tokens": 4, "total_tokens": 94},
    }


def test_classify_through_the_openai_sdk(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    bodies: list[dict] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        bodies.append(body)
        user = body["messages"][-1]["content"]
        if "abortion" in user:
            return httpx2.Response(200, json=_completion('{"choice": "yes"}'))
        if "pancakes" in user:
            return httpx2.Response(200, json=_completion('{"choice": "no"}'))
        return httpx2.Response(200, json=_completion("I would rather not say."))  # outside the schema

    cfg = RunConfig(runs_dir=tmp_path, llm=LLMConfig(backend="openai:gpt-4o-mini", max_retries=0))
    backend = get_backend(
        "openai:gpt-4o-mini",
        config=cfg.llm,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )
    flagged = rule_filter(_df(TEXTS[:3]), cfg)
    with ResponseCache(tmp_path) as cache:
        out = classify_controversy(flagged, backend, cache=cache, config=cfg)
    assert list(out["controversial"]) == [True, False, None]
    assert out.loc[2, "llm_failure"].startswith("unparseable")
    assert list(out["kept"]) == [True, False, False]
    first = bodies[0]
    assert first["model"] == "gpt-4o-mini"
    assert first["response_format"]["json_schema"]["schema"]["properties"]["choice"]["enum"] == ["yes", "no"]
    assert first["messages"][0]["role"] == "system"


# ---- the local backend (SmolLM2-135M via llama.cpp) -------------------------------------------------------


@pytest.mark.local_model
def test_classify_five_prompts_on_the_local_model(tmp_path):
    cfg = RunConfig(runs_dir=tmp_path)
    df = rule_filter(load_prompts(None).head(5), cfg)
    with ResponseCache(tmp_path) as cache:
        out = classify_controversy(df, get_backend("local"), cache=cache, config=cfg)
    # A weak model: each prompt gets a yes/no label or a recorded failure, never a crash or a guess.
    for label, failure in zip(out["controversial"], out["llm_failure"], strict=True):
        assert (label in (True, False) and failure is None) or (label is None and isinstance(failure, str))
    assert out["controversial"].notna().sum() >= 4
    assert out["kept"].tolist() == [bool(x) for x in out["controversial"]]
