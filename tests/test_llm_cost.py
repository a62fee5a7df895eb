"""Prices, cost arithmetic, estimates, backend specs, structured-output parsing and the llm CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    DEFAULT_PRICES,
    LLMRequest,
    ModelPrice,
    ResponseCache,
    Usage,
    cost_usd,
    estimate_cost,
    parse_spec,
    price_for,
)
from persona_lab.llm._common import find_choice, parse_answer, redact, retry_after_seconds
from persona_lab.llm._cost import BATCH_DISCOUNT

NO_TIKTOKEN = importlib.util.find_spec("tiktoken") is None


def test_cost_arithmetic_hand_computed() -> None:
    # gpt-4o-mini: $0.15 in, $0.075 cached, $0.60 out per 1M.
    # 1,000,000 input of which 400,000 cached, 200,000 output:
    # 600,000 * 0.15 + 400,000 * 0.075 + 200,000 * 0.60 = 90,000 + 30,000 + 120,000 = 240,000 / 1e6 = 0.24
    u = Usage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=200_000)
    assert cost_usd(u, price_for("gpt-4o-mini")) == pytest.approx(0.24, abs=1e-12)
    assert cost_usd(u, None) == 0.0
    # batch pricing halves every part
    assert cost_usd(u, price_for("gpt-4o-mini").scaled(BATCH_DISCOUNT)) == pytest.approx(0.12, abs=1e-12)


def test_price_lookup_snapshots_and_overrides() -> None:
    assert price_for("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert price_for("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]  # not gpt-4o's price
    assert price_for("claude-sonnet-4-5-20250929") == DEFAULT_PRICES["claude-sonnet-4-5"]
    assert price_for("claude-haiku-4-5") == ModelPrice(1.0, 0.1, 5.0, 1.25)
    assert price_for("gpt-4o", {"gpt-4o": (1.0, 0.5, 2.0)}) == ModelPrice(1.0, 0.5, 2.0)
    assert price_for("unknown-model") is None


@pytest.mark.skipif(not NO_TIKTOKEN, reason="the hand-computed count assumes characters / 4")
def test_estimate_cost_hand_computed() -> None:
    # each request: system 40 chars -> 10 tokens + 4 overhead, user 10 chars -> ceil(2.5)=3 + 4 -> 21 tokens
    reqs = [LLMRequest.chat("u" * 10, system="s" * 40, max_tokens=100)] * 1000
    est = estimate_cost(reqs, "openai:gpt-4.1")
    assert (est.calls, est.input_tokens, est.output_tokens, est.priced) == (1000, 21_000, 100_000, True)
    # gpt-4.1: 21,000 * 2.00 + 100,000 * 8.00 = 42,000 + 800,000 = 842,000 / 1e6 = 0.842
    assert est.usd == pytest.approx(0.842, abs=1e-12)
    assert estimate_cost(reqs, "gpt-4.1", batch=True).usd == pytest.approx(0.421, abs=1e-12)
    local = estimate_cost(reqs, "local")
    assert local.usd == 0.0 and not local.priced and "cost 0" in local.note
    assert estimate_cost(reqs, "openai:gpt-4.1@http://127.0.0.1:8000/v1").usd == 0.0  # self-hosted
    assert "<= $0.8420" in str(est)


def test_parse_spec_forms_and_errors() -> None:
    s = parse_spec("openai:Qwen2.5-72B@http://127.0.0.1:8000/v1/")
    assert (s.provider, s.model, s.base_url, s.self_hosted) == (
        "openai",
        "Qwen2.5-72B",
        "http://127.0.0.1:8000/v1",
        True,
    )
    assert parse_spec("anthropic:claude-sonnet-4-5").base_url is None
    assert parse_spec("local:/models/x.gguf").model == "/models/x.gguf"
    assert (
        parse_spec("openai:org@model").model == "org@model"
    )  # '@' not followed by a URL is part of the name
    for bad, msg in [("gemini:pro", "unknown provider"), ("openai", "missing model"), ("openai:@http://x", "missing model"),
                     ("openai:m@ftp://x", "http:// or https://")]:  # fmt: skip
        with pytest.raises(PersonaLabError, match=msg):
            parse_spec(bad)


def test_choice_parsing_and_json_repair_inputs() -> None:
    assert find_choice(" B.", ["A", "B"]) == "B"
    assert find_choice("I pick Option B over Option A", ["Option A", "Option B"]) == "Option B"
    assert (
        find_choice("Apples are great; answer A", ["A", "B"]) == "A"
    )  # whole tokens only: not the A of Apples
    assert find_choice("the answer is b", ["A", "B"]) == "B"
    assert find_choice("neither", ["A", "B"]) is None
    assert parse_answer('```json\n{"choice": "A"}\n```', None, ("A", "B")) == (None, "A")
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    assert parse_answer('{"x": 1}', schema, None) == ({"x": 1}, None)
    with pytest.raises(ValueError, match="at x: 'one' is not of type 'integer'"):
        parse_answer('{"x": "one"}', schema, None)
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_answer('{"x": 1', schema, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"x": "one', "it is not valid JSON (Unterminated string starting at character 6)"),
        ('{"x": 1', "it is not valid JSON (Expecting ',' delimiter at character 7)"),
        ("", "it is not valid JSON (Expecting value at character 0)"),
    ],
)
def test_json_failure_reasons_read_well(text: str, reason: str) -> None:
    schema = {"type": "object"}
    with pytest.raises(ValueError) as err:
        parse_answer(text, schema, None)
    assert str(err.value) == reason  # never "starting at at character"


def test_retry_after_and_redaction() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({}) is None
    assert (
        redact("key sk-proj-abcdef1234567890 bad", ()) == "key sk-proj-a[redacted] bad"
    )  # "sk-" + 6 characters kept
    assert redact("token=hunter2hunter2", ("hunter2hunter2",)) == "token=[redacted]"


def test_cli_ping_estimate_stats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from persona_lab.commands import llm as _cli
    from persona_lab.llm._spec import get_backend

    body = {
        "id": "c", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16},
    }  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cli")
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(200, json=body)))
    monkeypatch.setattr(
        "persona_lab.llm.get_backend", lambda spec, **kw: get_backend(spec, http_client=client, **kw)
    )
    runner = CliRunner()
    args = ["ping", "--backend", "openai:gpt-4o-mini", "--run-dir", str(tmp_path)]
    first = runner.invoke(_cli.llm_app, args)
    assert first.exit_code == 0, first.output
    # gpt-4o-mini: 14 * 0.15 + 2 * 0.60 = 3.3 USD per 1M -> $0.000003 (6 decimals)
    assert (
        "model    gpt-4o-mini" in first.output and "tokens   14 in (0 prompt-cached), 2 out" in first.output
    )
    assert "cost     $0.000003" in first.output and "cached   no" in first.output
    second = runner.invoke(_cli.llm_app, args)
    assert "cached   yes" in second.output
    stats = runner.invoke(_cli.llm_app, ["stats", str(tmp_path)])
    assert stats.exit_code == 0 and "gpt-4o-mini" in stats.output and "failures: 0" in stats.output
    est = runner.invoke(
        _cli.llm_app, ["estimate", "--backend", "openai:gpt-4o", "--calls", "10", "--prompt-chars", "400"]
    )
    assert est.exit_code == 0 and "10 calls to gpt-4o" in est.output
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setattr("persona_lab.llm.get_backend", get_backend)
    bad = runner.invoke(_cli.llm_app, ["ping", "--backend", "openai:gpt-4o"])
    assert bad.exit_code == 2 and "OPENAI_API_KEY is not set" in bad.output


def test_cli_stats_reads_a_run_directory_with_a_dot_in_its_name(tmp_path: Path) -> None:
    from persona_lab.commands import llm as _cli

    run_dir = tmp_path / "tiny.2026-11"
    run_dir.mkdir()
    ResponseCache(run_dir).close()  # a directory: the cache is <dir>/llm_cache.sqlite
    stats = CliRunner().invoke(_cli.llm_app, ["stats", str(run_dir)])
    assert stats.exit_code == 0, stats.output
    assert "no responses" in stats.output and "failures: 0" in stats.output
    missing = CliRunner().invoke(_cli.llm_app, ["stats", str(tmp_path / "other.run")])
    assert missing.exit_code == 2 and "no response cache here" in missing.output
