"""The Anthropic backend through the real ``anthropic`` SDK against ``httpx2.MockTransport`` handlers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from pydantic import BaseModel

from persona_lab.config import LLMConfig
from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    LLMFailure,
    LLMRequest,
    Message,
    ResponseCache,
    RetryPolicy,
    get_backend,
    run_requests,
)

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

KEY = "sk-ant-test-SECRET9876543210zyxw"
FAST = RetryPolicy(base_delay_s=0.001, max_delay_s=0.002)


def message(
    content: list[dict],
    *,
    stop: str = "end_turn",
    inp: int = 20,
    out: int = 5,
    read: int = 0,
    write: int = 0,
) -> dict:
    """A Messages API response body."""
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": write,
        },
    }


def text(t: str, **kw: object) -> httpx2.Response:
    return httpx2.Response(200, json=message([{"type": "text", "text": t}], **kw))


def tool(inp: dict, id_: str = "toolu_01") -> httpx2.Response:
    return httpx2.Response(
        200, json=message([{"type": "tool_use", "id": id_, "name": "answer", "input": inp}], stop="tool_use")
    )


def error(status: int, kind: str, msg: str, headers: dict | None = None) -> httpx2.Response:
    return httpx2.Response(
        status, json={"type": "error", "error": {"type": kind, "message": msg}}, headers=headers or {}
    )


class Server:
    def __init__(self, reply: Callable[[dict, int], httpx2.Response]) -> None:
        self.reply = reply
        self.bodies: list[dict] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        return self.reply(self.bodies[-1], len(self.bodies) - 1)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


def run(server: Server, reqs, tmp_path: Path, spec: str = "anthropic:claude-sonnet-4-5", **cfg: object):
    cfg.setdefault("max_retries", 3)
    config = LLMConfig(**cfg)
    be = get_backend(
        spec, config=config, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(server))
    )
    return run_requests(reqs, be, cache=tmp_path, config=config, progress=False, retry=FAST)


def test_plain_answer_prompt_caching_usage_and_cost(tmp_path: Path) -> None:
    server = Server(lambda b, n: text("pong", inp=50, read=1000, write=200, out=100))
    (r,) = run(server, [LLMRequest.chat("ping?", system="You are persona 17.", max_tokens=8)], tmp_path)
    assert r.text == "pong"
    u = r.usage
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_input_tokens, u.output_tokens) == (
        1250,
        1000,
        200,
        100,
    )
    # claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write (1.25x), $15 output per 1M tokens:
    # 50 * 3 + 1000 * 0.30 + 200 * 3.75 + 100 * 15 = 150 + 300 + 750 + 1500 = 2700 -> $0.0027
    assert r.cost_usd == pytest.approx(0.0027, abs=1e-12)
    body = server.bodies[0]
    assert body["system"] == [
        {"type": "text", "text": "You are persona 17.", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "ping?"}]}]
    assert body["max_tokens"] == 8 and body["model"] == "claude-sonnet-4-5" and "tools" not in body
    assert body["temperature"] == 0.0


def test_multi_turn_prefix_is_marked_for_caching(tmp_path: Path) -> None:
    server = Server(lambda b, n: text("ok"))
    turns = (
        Message(role="user", content="example question"),
        Message(role="assistant", content="example answer"),
        Message(role="user", content="real question"),
    )
    run(server, [LLMRequest(messages=turns)], tmp_path)
    msgs = server.bodies[0]["messages"]
    assert msgs[1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in msgs[0]["content"][0] and "cache_control" not in msgs[2]["content"][0]


class Verdict(BaseModel):
    label: str
    score: int


def test_json_through_forced_tool_use(tmp_path: Path) -> None:
    server = Server(lambda b, n: tool({"label": "fair", "score": 2}))
    (r,) = run(server, [LLMRequest.chat("rate", json_schema=Verdict.model_json_schema())], tmp_path)
    assert r.parsed == {"label": "fair", "score": 2} and json.loads(r.text) == r.parsed
    body = server.bodies[0]
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert body["tools"][0]["input_schema"] == Verdict.model_json_schema()


def test_non_object_schema_is_wrapped_and_unwrapped(tmp_path: Path) -> None:
    server = Server(lambda b, n: tool({"value": ["a", "b"]}))
    schema = {"type": "array", "items": {"type": "string"}}
    (r,) = run(server, [LLMRequest.chat("list", json_schema=schema)], tmp_path)
    assert r.parsed == ["a", "b"]
    assert server.bodies[0]["tools"][0]["input_schema"]["properties"]["value"] == schema


def test_invalid_tool_input_repaired_with_error_tool_result(tmp_path: Path) -> None:
    replies = [tool({"label": "fair", "score": "two"}), tool({"label": "fair", "score": 2}, "toolu_02")]
    server = Server(lambda b, n: replies[n])
    (r,) = run(server, [LLMRequest.chat("rate", json_schema=Verdict.model_json_schema())], tmp_path)
    assert r.parsed == {"label": "fair", "score": 2}
    repair = server.bodies[1]["messages"]
    assert repair[-2]["role"] == "assistant" and repair[-2]["content"][0]["type"] == "tool_use"
    result = repair[-1]["content"][0]
    assert (
        result["type"] == "tool_result" and result["tool_use_id"] == "toolu_01" and result["is_error"] is True
    )
    assert "score" in result["content"]


def test_closed_choices_through_tool_enum(tmp_path: Path) -> None:
    server = Server(lambda b, n: tool({"choice": "A"}))
    (r,) = run(server, [LLMRequest.chat("A or B?", choices=("A", "B"))], tmp_path)
    assert r.choice == "A"
    assert server.bodies[0]["tools"][0]["input_schema"]["properties"]["choice"]["enum"] == ["A", "B"]


def test_refusal_stop_reason_is_recorded(tmp_path: Path) -> None:
    server = Server(lambda b, n: text("", stop="refusal"))
    (r,) = run(server, [LLMRequest.chat("x")], tmp_path)
    assert isinstance(r, LLMFailure) and r.kind == "refusal" and len(server.bodies) == 1


def test_overloaded_529_and_429_are_retried(tmp_path: Path) -> None:
    def reply(b: dict, n: int) -> httpx2.Response:
        if n == 0:
            return error(529, "overloaded_error", "Overloaded")
        if n == 1:
            return error(429, "rate_limit_error", "slow down", {"retry-after": "0"})
        return text("ok")

    server = Server(reply)
    (r,) = run(server, [LLMRequest.chat("x")], tmp_path)
    assert r.text == "ok" and len(server.bodies) == 3


def test_auth_error_fails_fast_naming_the_variable(tmp_path: Path) -> None:
    server = Server(lambda b, n: error(401, "authentication_error", f"invalid x-api-key {KEY}"))
    with pytest.raises(PersonaLabError, match="ANTHROPIC_API_KEY") as info:
        run(server, [LLMRequest.chat(f"q{i}") for i in range(10)], tmp_path, concurrency=1)
    assert KEY not in str(info.value) and len(server.bodies) == 1
    for f in tmp_path.iterdir():
        assert b"SECRET9876543210" not in f.read_bytes(), f
    with ResponseCache(tmp_path) as cache:
        assert cache.failures()["kind"].tolist() == ["auth"]


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(PersonaLabError, match="ANTHROPIC_API_KEY is not set"):
        get_backend("anthropic:claude-haiku-4-5")


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_both_sdks_map_errors_the_same_way(provider: str, tmp_path: Path, monkeypatch) -> None:
    """One mapping (``_common.sdk_error``) serves both SDKs: the same transport errors, the same failures."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-0123456789")

    def reply(request: httpx2.Request) -> httpx2.Response:
        content = json.loads(request.content)["messages"][-1]["content"]
        prompt = content if isinstance(content, str) else content[0]["text"]
        if prompt == "refused":
            raise httpx2.ConnectError("connection refused")
        if prompt == "slow":
            raise httpx2.ReadTimeout("timed out")
        return httpx2.Response(503, json={"error": {"message": "overloaded", "type": "overloaded_error"}})

    config = LLMConfig(max_retries=0, circuit_breaker=0)
    spec = {"anthropic": "anthropic:claude-sonnet-4-5", "openai": "openai:gpt-4o"}[provider]
    be = get_backend(
        spec, config=config, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(reply))
    )
    reqs = [LLMRequest.chat(t) for t in ("refused", "slow", "busy")]
    res = run_requests(reqs, be, cache=tmp_path, config=config, progress=False, retry=FAST)
    assert [(r.kind, r.reason) for r in res] == [
        ("connection", "Connection error.: connection refused"),
        ("timeout", "request timed out"),
        ("server", "HTTP 503: overloaded (overloaded_error)"),
    ]
