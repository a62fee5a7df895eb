"""The OpenAI backend through the real ``openai`` SDK against ``httpx2.MockTransport`` handlers."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from pydantic import BaseModel

from persona_lab.config import LLMConfig
from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    BackendUnavailable,
    LLMFailure,
    LLMRequest,
    LLMResponse,
    ResponseCache,
    RetryPolicy,
    check_backend,
    get_backend,
    run_requests,
    summarize,
)

KEY = "sk-test-SECRET0123456789abcdef"
FAST = RetryPolicy(base_delay_s=0.001, max_delay_s=0.002)


def completion(
    content: str | None = "pong",
    *,
    prompt: int = 12,
    cached: int = 0,
    out: int = 3,
    refusal: str | None = None,
    finish: str = "stop",
    model: str = "gpt-4o-2024-08-06",
) -> dict:
    """A chat.completion body shaped like the OpenAI API's."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1730000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": out,
            "total_tokens": prompt + out,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def error(status: int, message: str, code: str, headers: dict | None = None) -> httpx2.Response:
    body = {"error": {"message": message, "type": "error", "param": None, "code": code}}
    return httpx2.Response(status, json=body, headers=headers or {})


class Server:
    """Records every request body; ``reply(body, n)`` returns the response for the n-th call (0-based)."""

    def __init__(self, reply: Callable[[dict, int], httpx2.Response]) -> None:
        self.reply = reply
        self.bodies: list[dict] = []
        self.headers: list[dict] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        return self.reply(body, len(self.bodies) - 1)

    def backend(self, spec: str = "openai:gpt-4o", **cfg: object):
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(self))
        return get_backend(spec, config=LLMConfig(**cfg), http_client=client)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def run(server: Server, reqs, tmp_path: Path, spec: str = "openai:gpt-4o", **cfg: object):
    cfg.setdefault("max_retries", 3)
    config = LLMConfig(**cfg)
    return run_requests(
        reqs, server.backend(spec, **cfg), cache=tmp_path, config=config, progress=False, retry=FAST
    )


def test_plain_answer_usage_cost_and_request_shape(tmp_path: Path) -> None:
    server = Server(
        lambda b, n: httpx2.Response(200, json=completion("pong", prompt=120, cached=100, out=10))
    )
    req = LLMRequest.chat("ping?", system="Be brief.", max_tokens=8, seed=7, temperature=0.3)
    (r,) = run(server, [req], tmp_path)
    assert isinstance(r, LLMResponse) and r.text == "pong" and not r.cached
    assert (r.usage.input_tokens, r.usage.cached_input_tokens, r.usage.output_tokens) == (120, 100, 10)
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per 1M tokens:
    # (120 - 100) * 2.50 + 100 * 1.25 + 10 * 10.00 = 50 + 125 + 100 = 275 -> $0.000275
    assert r.cost_usd == pytest.approx(0.000275, abs=1e-12)
    assert r.backend == "openai:gpt-4o" and r.model == "gpt-4o"
    body = server.bodies[0]
    assert body["model"] == "gpt-4o" and body["seed"] == 7 and body["temperature"] == 0.3
    assert body["max_completion_tokens"] == 8 and "max_tokens" not in body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "ping?"},
    ]
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    assert summarize([r]).cached_token_share == pytest.approx(100 / 120)


def test_rerun_replays_from_cache_with_zero_calls(tmp_path: Path) -> None:
    server = Server(
        lambda b, n: httpx2.Response(200, json=completion(f"answer {b['messages'][-1]['content']}"))
    )
    reqs = [LLMRequest.chat(f"q{i}") for i in range(5)]
    first = run(server, reqs, tmp_path)
    assert len(server.bodies) == 5
    again = run(server, reqs, tmp_path)
    assert len(server.bodies) == 5  # no new call
    assert [r.text for r in again] == [r.text for r in first] == [f"answer q{i}" for i in range(5)]
    assert all(r.cached for r in again) and not any(r.cached for r in first)


class Verdict(BaseModel):
    label: str
    score: int


def test_json_schema_native_format_and_validation(tmp_path: Path) -> None:
    server = Server(lambda b, n: httpx2.Response(200, json=completion('{"label": "ok", "score": 3}')))
    req = LLMRequest.chat("rate", json_schema=Verdict.model_json_schema())
    (r,) = run(server, [req], tmp_path)
    assert r.parsed == {"label": "ok", "score": 3}
    fmt = server.bodies[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Verdict"
    assert fmt["json_schema"]["schema"] == Verdict.model_json_schema()
    # pydantic's schema does not close the object, so OpenAI's strict mode cannot be asserted
    assert fmt["json_schema"]["strict"] is False


def test_malformed_json_gets_one_repair_attempt(tmp_path: Path) -> None:
    answers = ['{"label": "ok", "score": ', '{"label": "ok", "score": 4}']
    server = Server(lambda b, n: httpx2.Response(200, json=completion(answers[n], prompt=50, out=5)))
    (r,) = run(server, [LLMRequest.chat("rate", json_schema=Verdict.model_json_schema())], tmp_path)
    assert r.parsed == {"label": "ok", "score": 4}
    assert len(server.bodies) == 2
    repair = server.bodies[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": answers[0]}
    assert "not valid JSON" in repair[-1]["content"] and '"score"' in repair[-1]["content"]
    assert (r.usage.input_tokens, r.usage.output_tokens) == (100, 10)  # both calls are billed


def test_invalid_json_twice_is_recorded_unparseable(tmp_path: Path) -> None:
    server = Server(lambda b, n: httpx2.Response(200, json=completion('{"label": 5}')))
    (r,) = run(server, [LLMRequest.chat("rate", json_schema=Verdict.model_json_schema())], tmp_path)
    assert isinstance(r, LLMFailure) and r.kind == "unparseable" and "schema" in r.reason
    assert len(server.bodies) == 2  # one answer + one repair, no retries
    with ResponseCache(tmp_path) as cache:
        fails = cache.failures()
    assert fails["kind"].tolist() == ["unparseable"] and fails["key"].tolist() == [r.key]


def test_closed_choices_constrained_by_enum_and_parsed(tmp_path: Path) -> None:
    server = Server(lambda b, n: httpx2.Response(200, json=completion('{"choice": "B"}')))
    (r,) = run(server, [LLMRequest.chat("A or B?", choices=("A", "B"))], tmp_path)
    assert r.choice == "B"
    schema = server.bodies[0]["response_format"]["json_schema"]
    assert schema["schema"]["properties"]["choice"]["enum"] == ["A", "B"] and schema["strict"] is True


def test_compatible_server_plain_text_choice_and_optional_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    server = Server(lambda b, n: httpx2.Response(200, json=completion("Answer: B, because")))
    spec = "openai:Qwen2.5-72B@http://127.0.0.1:8000/v1"
    (r,) = run(server, [LLMRequest.chat("A or B?", choices=("A", "B"), max_tokens=5)], tmp_path, spec)
    assert r.choice == "B" and r.cost_usd == 0.0 and r.model == "Qwen2.5-72B"
    assert server.headers[0]["authorization"] == "Bearer not-needed"
    assert server.bodies[0]["max_tokens"] == 5 and server.bodies[0]["model"] == "Qwen2.5-72B"


def test_refusal_is_recorded_not_retried(tmp_path: Path) -> None:
    server = Server(
        lambda b, n: httpx2.Response(200, json=completion(None, refusal="I can't help with that."))
    )
    (r,) = run(server, [LLMRequest.chat("x")], tmp_path)
    assert isinstance(r, LLMFailure) and r.kind == "refusal" and r.attempts == 1
    assert "can't help" in r.reason and len(server.bodies) == 1


def test_429_retry_after_is_respected(tmp_path: Path) -> None:
    import time

    def reply(b: dict, n: int) -> httpx2.Response:
        if n == 0:
            return error(429, "Rate limit reached", "rate_limit_exceeded", {"retry-after-ms": "150"})
        return httpx2.Response(200, json=completion("ok"))

    server = Server(reply)
    t0 = time.perf_counter()
    (r,) = run(server, [LLMRequest.chat("x")], tmp_path)
    assert r.text == "ok" and len(server.bodies) == 2
    assert time.perf_counter() - t0 >= 0.15  # waited Retry-After, not the 1-2 ms backoff


def test_500_and_timeout_retried_until_exhausted(tmp_path: Path) -> None:
    def reply(b: dict, n: int) -> httpx2.Response:
        if b["messages"][0]["content"] == "timeout":
            raise httpx2.ReadTimeout("timed out")
        if n < 2:
            return error(500, "The server had an error", "server_error")
        return httpx2.Response(200, json=completion("ok"))

    server = Server(reply)
    ok, slow = run(server, [LLMRequest.chat("fine"), LLMRequest.chat("timeout")], tmp_path, concurrency=1)
    assert isinstance(ok, LLMResponse) and ok.text == "ok"
    assert isinstance(slow, LLMFailure) and slow.kind == "timeout" and slow.attempts == 4  # 1 + max_retries


def test_sdk_retries_are_disabled(tmp_path: Path) -> None:
    server = Server(lambda b, n: error(503, "overloaded", "server_error"))
    (r,) = run(server, [LLMRequest.chat("x")], tmp_path, max_retries=0)
    assert isinstance(r, LLMFailure) and r.kind == "server" and len(server.bodies) == 1


def test_invalid_request_recorded_per_item(tmp_path: Path) -> None:
    def reply(b: dict, n: int) -> httpx2.Response:
        if b["messages"][0]["content"] == "bad":
            return error(400, "Invalid value for 'temperature'", "invalid_value")
        return httpx2.Response(200, json=completion("ok"))

    server = Server(reply)
    res = run(server, [LLMRequest.chat("good"), LLMRequest.chat("bad"), LLMRequest.chat("good2")], tmp_path)
    assert [type(r).__name__ for r in res] == ["LLMResponse", "LLMFailure", "LLMResponse"]
    assert res[1].kind == "invalid_request" and "temperature" in res[1].reason and res[1].attempts == 1
    assert len(server.bodies) == 3


def test_auth_error_fails_fast_and_key_never_reaches_the_cache(tmp_path: Path) -> None:
    # the provider echoes (part of) the key in its message; it must be redacted everywhere
    server = Server(lambda b, n: error(401, f"Incorrect API key provided: {KEY}.", "invalid_api_key"))
    reqs = [LLMRequest.chat(f"q{i}") for i in range(20)]
    with pytest.raises(PersonaLabError, match="OPENAI_API_KEY") as info:
        run(server, reqs, tmp_path, concurrency=1)
    assert KEY not in str(info.value) and "invalid_api_key" in str(info.value)
    assert len(server.bodies) == 1  # no retry, no further call
    for f in tmp_path.iterdir():  # the sqlite file, its WAL and shm
        assert KEY.encode() not in f.read_bytes(), f
        assert b"SECRET0123456789" not in f.read_bytes(), f
    with ResponseCache(tmp_path) as cache:
        assert cache.failures()["kind"].tolist() == ["auth"]


def test_insufficient_quota_fails_fast(tmp_path: Path) -> None:
    server = Server(lambda b, n: error(429, "You exceeded your current quota", "insufficient_quota"))
    with pytest.raises(PersonaLabError, match="quota"):
        run(server, [LLMRequest.chat("x")], tmp_path)
    assert len(server.bodies) == 1


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(PersonaLabError, match="OPENAI_API_KEY is not set"):
        get_backend("openai:gpt-4o")


def test_fault_injection_every_item_accounted_for(tmp_path: Path) -> None:
    rng = random.Random(20)
    faults = {"n": 0}

    def reply(b: dict, n: int) -> httpx2.Response:
        if rng.random() < 0.2:  # 20 % of calls fail transiently, in all four ways
            faults["n"] += 1
            kind = rng.choice(["429", "500", "timeout", "connect"])
            if kind == "timeout":
                raise httpx2.ReadTimeout("timed out")
            if kind == "connect":
                raise httpx2.ConnectError("connection refused")
            return error(int(kind), "transient", "transient")
        return httpx2.Response(200, json=completion("a " + b["messages"][0]["content"]))

    server = Server(reply)
    reqs = [LLMRequest.chat(f"item {i}") for i in range(200)]
    res = run(server, reqs, tmp_path, max_retries=6, concurrency=8)
    assert faults["n"] > 20
    assert len(res) == 200 and all(isinstance(r, LLMResponse) for r in res)
    assert [r.text for r in res] == [f"a item {i}" for i in range(200)]  # input order
    assert len(server.bodies) == 200 + faults["n"]
    # without retries the failures are recorded, one row per failed item, and nothing is dropped
    server2 = Server(reply)
    reqs2 = [LLMRequest.chat(f"other {i}") for i in range(200)]
    res2 = run(server2, reqs2, tmp_path, max_retries=0)
    failed = [r for r in res2 if isinstance(r, LLMFailure)]
    assert 10 < len(failed) < 80 and len(res2) == 200
    with ResponseCache(tmp_path) as cache:
        assert sorted(cache.failures()["key"]) == sorted(f.key for f in failed)
        assert len(cache) == 200 + 200 - len(failed)


def test_self_hosted_server_without_json_schema_falls_back_to_json_object(tmp_path: Path) -> None:
    """llama-cpp-python's server answers ``response_format.type == "json_schema"`` with a 500 and takes
    ``{"type": "json_object", "schema": ...}``; the backend switches once and keeps the second form."""

    def reply(body: dict, n: int) -> httpx2.Response:
        if body["response_format"]["type"] == "json_schema":
            return error(500, "unsupported response_format type", "server_error")
        assert body["response_format"]["schema"]["title"] == "City"
        return httpx2.Response(200, json=completion('{"name": "Lyon", "country": "France"}'))

    class City(BaseModel):
        name: str
        country: str

    server = Server(reply)
    reqs = [LLMRequest.chat(f"city {i}?", json_schema=City.model_json_schema()) for i in range(3)]
    out = run(server, reqs, tmp_path, spec="openai:smollm2@http://127.0.0.1:9/v1", max_retries=0)
    assert [r.parsed for r in out] == [{"name": "Lyon", "country": "France"}] * 3
    # each call answered through json_object; json_schema refused at most once per call in flight when the
    # first refusal arrived, and never again after it
    types = [b["response_format"]["type"] for b in server.bodies]
    assert types.count("json_object") == 3 and 1 <= types.count("json_schema") <= 3
    assert types[0] == "json_schema"
    again = run(
        server,
        [LLMRequest.chat("new?", json_schema=City.model_json_schema())],
        tmp_path,
        spec="openai:smollm2@http://127.0.0.1:9/v1",
        max_retries=0,
    )
    assert isinstance(again[0], LLMResponse)


def test_hosted_openai_never_falls_back(tmp_path: Path) -> None:
    server = Server(lambda b, n: error(500, "boom", "server_error"))
    req = LLMRequest.chat("x?", json_schema={"type": "object", "title": "X"})
    (r,) = run(server, [req], tmp_path, max_retries=0)
    assert isinstance(r, LLMFailure) and r.kind == "server"
    assert {b["response_format"]["type"] for b in server.bodies} == {"json_schema"}


def test_one_transient_500_does_not_switch_the_response_format(tmp_path: Path) -> None:
    # a self-hosted server that takes json_schema but has one bad moment
    def reply(body: dict, n: int) -> httpx2.Response:
        if n == 0:
            return error(500, "The server had an error while processing your request", "server_error")
        assert body["response_format"]["type"] == "json_schema"
        return httpx2.Response(200, json=completion('{"label": "ok", "score": 1}'))

    server = Server(reply)
    reqs = [LLMRequest.chat(f"rate {i}", json_schema=Verdict.model_json_schema()) for i in range(4)]
    out = run(server, reqs, tmp_path, spec="openai:vllm-model@http://127.0.0.1:8000/v1", concurrency=1)
    assert [r.parsed for r in out] == [{"label": "ok", "score": 1}] * 4
    # the 500 was retried with the same body; no request went out as json_object
    assert [b["response_format"]["type"] for b in server.bodies] == ["json_schema"] * 5


def test_a_400_naming_the_parameter_switches_to_json_object(tmp_path: Path) -> None:
    def reply(body: dict, n: int) -> httpx2.Response:
        if body["response_format"]["type"] == "json_schema":
            return error(400, "Unsupported value: 'response_format.type' does not support 'json_schema'", "x")
        return httpx2.Response(200, json=completion('{"label": "ok", "score": 2}'))

    server = Server(reply)
    reqs = [LLMRequest.chat(f"rate {i}", json_schema=Verdict.model_json_schema()) for i in range(3)]
    out = run(server, reqs, tmp_path, spec="openai:m@http://127.0.0.1:8000/v1", concurrency=1, max_retries=0)
    assert [r.parsed for r in out] == [{"label": "ok", "score": 2}] * 3
    assert [b["response_format"]["type"] for b in server.bodies] == ["json_schema"] + ["json_object"] * 3


def test_which_errors_say_json_schema_is_unsupported() -> None:
    from persona_lab.llm._openai import refuses_json_schema

    assert refuses_json_schema(400, "Invalid parameter: response_format")
    assert refuses_json_schema(422, "body.response_format.type: Input should be 'text' or 'json_object'")
    assert refuses_json_schema(
        500, "1 validation error: ('body', 'response_format', 'type') ... 'json_schema'"
    )
    assert not refuses_json_schema(500, "The server had an error while processing your request")
    assert not refuses_json_schema(400, "Invalid value for 'temperature'")
    assert not refuses_json_schema(503, "response_format busy")  # overloaded, whatever it says


# ---- a backend that is down -----------------------------------------------------------------------------


DEAD = "openai:m@http://127.0.0.1:9/v1"
"""A self-hosted spec whose port has no server (9 is the discard port; nothing listens on loopback)."""


def test_a_dead_server_stops_the_stage_quickly_and_the_rerun_resumes(tmp_path: Path) -> None:
    import time

    reqs = [LLMRequest.chat(f"q{i}", tag=f"p{i}") for i in range(40)]
    config = LLMConfig(concurrency=4, max_retries=6)
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailable) as err:
        run_requests(reqs, DEAD, cache=tmp_path, config=config, progress=False, retry=FAST)
    assert time.perf_counter() - t0 < 5.0  # without the breaker: 40 x 7 attempts with backoff
    e = err.value
    assert e.backend == DEAD and e.reason.startswith("connection: Connection error")
    assert f"backend {DEAD!r} looks down: 8 consecutive connection or timeout errors" in str(e)
    assert "0 of 40 requests answered and 40 recorded as not attempted" in str(e)
    assert "rerun the same command" in str(e)
    assert {r.kind for r in e.results} == {"not_attempted"} and e.results[7].tag == "p7"
    # the server is up again (same spec, so the same keys): the rerun sends all 40
    server = Server(lambda b, n: httpx2.Response(200, json=completion("a " + b["messages"][0]["content"])))
    res = run(server, reqs, tmp_path, spec=DEAD)
    assert [r.text for r in res] == [f"a q{i}" for i in range(40)] and len(server.bodies) == 40


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers: its base URL."""
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)  # read nothing, write nothing

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/v1"
    srv.close()
    for conn in held:
        conn.close()


def test_a_server_that_never_answers_stops_the_stage_after_a_few_timeouts(
    tmp_path: Path, silent_server: str
) -> None:
    import time

    spec = f"openai:m@{silent_server}"
    reqs = [LLMRequest.chat(f"q{i}") for i in range(40)]
    config = LLMConfig(concurrency=4, max_retries=6, timeout_s=0.2)
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailable) as err:
        run_requests(reqs, spec, cache=tmp_path, config=config, progress=False, retry=FAST)
    # two rounds of 4 timeouts of 0.2 s; without the breaker: 40 x 7 x 0.2 s / 4 = 14 s
    assert time.perf_counter() - t0 < 3.0
    assert "8 consecutive connection or timeout errors" in str(err.value)
    assert "(last: timeout: request timed out)" in str(err.value) and "raise llm.timeout_s" in str(err.value)
    with ResponseCache(tmp_path) as cache:
        assert cache.failures()["kind"].tolist() == ["not_attempted"] * 40


def test_ping_has_a_timeout(silent_server: str) -> None:
    import time

    from typer.testing import CliRunner

    from persona_lab.commands import llm as _cli

    t0 = time.perf_counter()
    out = CliRunner().invoke(
        _cli.llm_app, ["ping", "--backend", f"openai:m@{silent_server}", "--timeout", "0.3"]
    )
    assert time.perf_counter() - t0 < 3.0
    assert out.exit_code == 2, out.output
    assert "the ping failed (timeout: request timed out); raise --timeout (now 0.3 s)" in out.output


# ---- checking a backend before a run ------------------------------------------------------------------


def test_check_backend_without_any_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("check_backend must not connect anywhere")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    check_backend("openai:gpt-4o")  # OPENAI_API_KEY is set (fixture)
    check_backend("openai:Qwen2.5-72B@http://10.0.0.1:8000/v1")
    check_backend("local")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    check_backend("openai:Qwen2.5-72B@http://10.0.0.1:8000/v1")  # a self-hosted server needs no key
    check_backend("anthropic:claude@https://gateway.example/v1")
    cases = {
        "openai:gpt-4o": "backend 'openai:gpt-4o': the environment variable OPENAI_API_KEY is not set",
        "anthropic:claude-sonnet-4-5": "the environment variable ANTHROPIC_API_KEY is not set",
        "gemini:pro": "backend spec 'gemini:pro': unknown provider 'gemini'",
        "openai:": "backend spec 'openai:': missing model name after 'openai:'",
        "openai:m@ftp://host/v1": "the server URL must start with http:// or https://",
        "local:/nowhere/model.gguf": "local backend: model file /nowhere/model.gguf does not exist",
    }
    for spec, message in cases.items():
        with pytest.raises(PersonaLabError) as err:
            check_backend(spec)
        assert message in str(err.value), (spec, err.value)
