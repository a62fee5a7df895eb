"""Provider batch APIs driven through the official SDKs against simulated OpenAI and Anthropic servers.

The handlers below implement the batch lifecycles with the providers' documented JSON shapes: OpenAI
(upload file -> create batch -> validating -> in_progress -> completed, output and error JSONL files) and
Anthropic (create -> in_progress -> ended, results JSONL with succeeded, errored and expired lines).
"""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from pydantic import BaseModel

from persona_lab.config import LLMConfig
from persona_lab.errors import PersonaLabError
from persona_lab.llm import LLMFailure, LLMRequest, LLMResponse
from persona_lab.llm._batch import batch_jobs, run_batch
from persona_lab.llm._cache import ResponseCache, request_key


class Opinion(BaseModel):
    stance: str
    confidence: int


def _no_sleep(_: float) -> None:
    pass


# ---- a simulated OpenAI Batch API ------------------------------------------------------------------------


class FakeOpenAI:
    """Files and batches in memory; a batch goes validating -> in_progress -> completed on successive GETs."""

    def __init__(self, answer: Any, *, fail_retrieves: int = 0) -> None:
        self.answer = answer  # (body) -> (status_code, body) for one request line
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.calls: list[str] = []
        self.fail_retrieves = fail_retrieves

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key="sk-test", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(self))
        )

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        self.calls.append(f"{method} {path}")
        if method == "POST" and path == "/v1/files":
            msg = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.content
            )
            parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
            assert parts["purpose"].get_content().strip() == "batch"
            fid = f"file-in{len(self.files)}"
            self.files[fid] = parts["file"].get_payload(decode=True)
            return httpx2.Response(200, json=self._file(fid, "batch"))
        if method == "POST" and path == "/v1/batches":
            body = json.loads(request.content)
            assert body["endpoint"] == "/v1/chat/completions" and body["completion_window"] == "24h"
            bid = f"batch_{len(self.batches)}"
            self.batches[bid] = self._batch(bid, body["input_file_id"], "validating")
            return httpx2.Response(200, json=self.batches[bid])
        if method == "GET" and path.startswith("/v1/batches/"):
            if self.fail_retrieves > 0:
                self.fail_retrieves -= 1
                return httpx2.Response(
                    500, json={"error": {"message": "internal error", "type": "server_error"}}
                )
            bid = path.rsplit("/", 1)[1]
            self._advance(bid)
            return httpx2.Response(200, json=self.batches[bid])
        if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            return httpx2.Response(200, content=self.files[path.split("/")[3]])
        return httpx2.Response(404, json={"error": {"message": f"no route {method} {path}"}})

    def _advance(self, bid: str) -> None:
        b = self.batches[bid]
        self.polls[bid] = self.polls.get(bid, 0) + 1
        lines = [json.loads(x) for x in self.files[b["input_file_id"]].decode().splitlines()]
        if b["status"] == "validating":
            b.update(status="in_progress", in_progress_at=1_700_000_010)
            b["request_counts"] = {"total": len(lines), "completed": 0, "failed": 0}
        elif b["status"] == "in_progress":
            out, err = [], []
            for i, line in enumerate(lines):
                status, body = self.answer(line["body"])
                row = {
                    "id": f"batch_req_{i}",
                    "custom_id": line["custom_id"],
                    "response": {"status_code": status, "request_id": f"req_{i}", "body": body},
                    "error": None,
                }
                (out if status == 200 else err).append(json.dumps(row))
            self.files[f"file-out-{bid}"] = ("\n".join(out) + "\n").encode()
            self.files[f"file-err-{bid}"] = ("\n".join(err) + "\n").encode()
            b.update(
                status="completed",
                completed_at=1_700_000_100,
                output_file_id=f"file-out-{bid}",
                error_file_id=f"file-err-{bid}" if err else None,
                request_counts={"total": len(lines), "completed": len(out), "failed": len(err)},
            )

    @staticmethod
    def _file(fid: str, purpose: str) -> dict[str, Any]:
        return {
            "id": fid,
            "object": "file",
            "bytes": 100,
            "created_at": 1_700_000_000,
            "filename": "batch.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    @staticmethod
    def _batch(bid: str, input_file_id: str, status: str) -> dict[str, Any]:
        return {
            "id": bid,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": None,
            "error_file_id": None,
            "created_at": 1_700_000_000,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": {"source": "persona_lab"},
        }


def completion(content: str, prompt_tokens: int = 100, cached: int = 20, completion_tokens: int = 10) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_050,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def openai_answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The simulated model: answers by the last user message."""
    text = body["messages"][-1]["content"]
    if "too long" in text:
        return 400, {
            "error": {
                "message": "This model's maximum context length is 128000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
    if "broken" in text:
        return 200, completion('{"stance": "for"')
    if "uniform" in text:
        return 200, completion('{"stance": "against", "confidence": 4}')
    if "A or B" in text:
        return 200, completion('{"choice": "B"}')
    return 200, completion("Hello there.")


REQUESTS = [
    LLMRequest.chat("Say hello.", tag="p1"),
    LLMRequest.chat("School uniforms?", json_schema=Opinion.model_json_schema(), tag="p2"),
    LLMRequest.chat("A or B?", choices=("A", "B"), tag="p3"),
    LLMRequest.chat("This prompt is too long.", tag="p4"),
    LLMRequest.chat("Give broken JSON.", json_schema=Opinion.model_json_schema(), tag="p5"),
]
SPEC = "openai:gpt-4o-mini"


def test_openai_batch_full_lifecycle():
    fake = FakeOpenAI(openai_answer)
    cache = ResponseCache(":memory:")
    out = run_batch(REQUESTS, SPEC, cache=cache, client=fake.client(), poll_interval=0, progress=False)

    # one upload, one create, then GETs: validating->in_progress, in_progress->completed, collect
    assert [c for c in fake.calls if c.startswith("POST")] == ["POST /v1/files", "POST /v1/batches"]
    lines = [json.loads(x) for x in fake.files["file-in0"].decode().splitlines()]
    keys = [request_key(r, SPEC, "gpt-4o-mini") for r in REQUESTS]
    assert [ln["custom_id"] for ln in lines] == keys
    assert lines[0] == {
        "custom_id": keys[0],
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "messages": [{"role": "user", "content": "Say hello."}],
            "model": "gpt-4o-mini",
            "temperature": 0.0,
            "seed": 0,
            "max_completion_tokens": 256,
        },
    }
    assert lines[1]["body"]["response_format"]["type"] == "json_schema"
    assert lines[2]["body"]["response_format"]["json_schema"]["schema"]["properties"]["choice"]["enum"] == [
        "A",
        "B",
    ]

    hello, opinion, choice, too_long, broken = out
    assert isinstance(hello, LLMResponse) and hello.text == "Hello there." and not hello.cached
    # gpt-4o-mini per 1M tokens: input 0.15, cached 0.075, output 0.60; batch = half of that.
    # 100 prompt tokens of which 20 cached, 10 output:
    # (80 * 0.075 + 20 * 0.0375 + 10 * 0.30) / 1e6 = (6 + 0.75 + 3) / 1e6 = 9.75e-6 USD
    assert hello.cost_usd == pytest.approx(9.75e-6, rel=1e-12)
    assert hello.usage.input_tokens == 100 and hello.usage.cached_input_tokens == 20
    assert hello.usage.output_tokens == 10 and hello.key == keys[0]
    assert isinstance(opinion, LLMResponse) and opinion.parsed == {"stance": "against", "confidence": 4}
    assert isinstance(choice, LLMResponse) and choice.choice == "B"
    assert isinstance(too_long, LLMFailure) and too_long.kind == "invalid_request"
    assert "maximum context length" in too_long.reason and too_long.tag == "p4"
    assert isinstance(broken, LLMFailure) and broken.kind == "unparseable"

    # merged into the cache: answers under the same keys the online runner uses, failures recorded
    assert len(cache) == 3 and cache.get(keys[1]).parsed == {"stance": "against", "confidence": 4}
    failures = cache.failures().set_index("key")
    assert (
        failures.loc[keys[3], "kind"] == "invalid_request" and failures.loc[keys[4], "kind"] == "unparseable"
    )
    assert failures.loc[keys[3], "tag"] == "p4"
    jobs = batch_jobs(cache)
    assert jobs[["batch_id", "provider", "status", "n_requests"]].values.tolist() == [
        ["batch_0", "openai", "completed", 5]
    ]
    assert jobs["collected_at"].notna().all()

    # a rerun replays the answers and the two recorded failures, submitting nothing
    fake2 = FakeOpenAI(openai_answer)
    again = run_batch(REQUESTS, SPEC, cache=cache, client=fake2.client(), poll_interval=0, progress=False)
    assert [x.cached for x in again] == [True] * 5 and fake2.calls == []
    assert [(x.kind, x.tag) for x in again[3:]] == [("invalid_request", "p4"), ("unparseable", "p5")]
    # with retry_failures, only the two failed requests are submitted again
    retry = LLMConfig(retry_failures=True)
    again = run_batch(
        REQUESTS, SPEC, cache=cache, config=retry, client=fake2.client(), poll_interval=0, progress=False
    )
    assert [isinstance(x, LLMResponse) and x.cached for x in again] == [True, True, True, False, False]
    resubmitted = [json.loads(x)["custom_id"] for x in fake2.files["file-in0"].decode().splitlines()]
    assert resubmitted == [keys[3], keys[4]]


def test_openai_batch_skips_cached_and_deduplicates():
    fake = FakeOpenAI(openai_answer)
    cache = ResponseCache(":memory:")
    first = run_batch(REQUESTS[:1], SPEC, cache=cache, client=fake.client(), poll_interval=0, progress=False)
    assert isinstance(first[0], LLMResponse)
    fake2 = FakeOpenAI(openai_answer)
    reqs = [REQUESTS[0], REQUESTS[1], REQUESTS[1]]
    out = run_batch(reqs, SPEC, cache=cache, client=fake2.client(), poll_interval=0, progress=False)
    assert len(fake2.files["file-in0"].decode().splitlines()) == 1  # only the new request, once
    assert out[0].cached and out[1].parsed == out[2].parsed == {"stance": "against", "confidence": 4}


def test_openai_batch_resumes_after_a_crash_without_resubmitting(tmp_path):
    db = tmp_path / "llm_cache.sqlite"
    fake = FakeOpenAI(openai_answer, fail_retrieves=1)
    with ResponseCache(db) as cache, pytest.raises(PersonaLabError) as err:
        run_batch(REQUESTS, SPEC, cache=cache, client=fake.client(), poll_interval=0, progress=False)
    assert "batch_0" in str(err.value) and "rerun" in str(err.value)
    assert fake.calls.count("POST /v1/batches") == 1

    # a new process: the batch id comes from the cache database, the batch is polled, not created again
    with ResponseCache(db) as cache:
        out = run_batch(REQUESTS, SPEC, cache=cache, client=fake.client(), poll_interval=0, progress=False)
        assert fake.calls.count("POST /v1/batches") == 1 and fake.calls.count("POST /v1/files") == 1
        assert [type(x).__name__ for x in out] == ["LLMResponse"] * 3 + ["LLMFailure"] * 2
        assert out[0].text == "Hello there." and len(cache) == 3
        assert batch_jobs(cache)["status"].tolist() == ["completed"]


def test_openai_expired_batch_keeps_finished_answers():
    fake = FakeOpenAI(openai_answer)
    original = fake._advance

    def expire(bid: str) -> None:
        original(bid)
        b = fake.batches[bid]
        if b["status"] == "completed":  # expired after answering the first request only
            out_file = f"file-out-{bid}"
            fake.files[out_file] = fake.files[out_file].decode().splitlines()[0].encode() + b"\n"
            b.update(status="expired", error_file_id=None)

    fake._advance = expire  # type: ignore[method-assign]
    out = run_batch(
        REQUESTS[:3],
        SPEC,
        cache=ResponseCache(":memory:"),
        client=fake.client(),
        poll_interval=0,
        progress=False,
    )
    assert isinstance(out[0], LLMResponse)
    assert [x.kind for x in out[1:]] == ["timeout", "timeout"]
    assert "expired" in out[1].reason


def test_local_backend_has_no_batch_api():
    with pytest.raises(PersonaLabError) as err:
        run_batch(REQUESTS, "local", cache=ResponseCache(":memory:"))
    assert "llm.batch = false" in str(err.value)


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PersonaLabError) as err:
        run_batch(REQUESTS, SPEC, cache=ResponseCache(":memory:"))
    assert "OPENAI_API_KEY" in str(err.value)


# ---- a simulated Anthropic Message Batches API -------------------------------------------------------------


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 50,
            "output_tokens": 20,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 0,
        },
    }


class FakeAnthropic:
    """One batch store; a batch is in_progress on its first GET and ended (with results) on the second."""

    def __init__(self, fail_retrieves: int = 0) -> None:
        self.batches: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[str] = []
        self.fail_retrieves = fail_retrieves

    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key="sk-ant-test",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(self)),
        )

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        self.calls.append(f"{method} {path}")
        if method == "POST" and path == "/v1/messages/batches":
            reqs = json.loads(request.content)["requests"]
            bid = f"msgbatch_{len(self.batches):02d}"
            self.requests[bid] = reqs
            self.batches[bid] = {
                "id": bid,
                "type": "message_batch",
                "processing_status": "in_progress",
                "request_counts": {
                    "processing": len(reqs),
                    "succeeded": 0,
                    "errored": 0,
                    "canceled": 0,
                    "expired": 0,
                },
                "ended_at": None,
                "created_at": "2025-11-01T12:00:00Z",
                "expires_at": "2025-11-02T12:00:00Z",
                "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": None,
            }
            return httpx2.Response(200, json=self.batches[bid])
        if method == "GET" and path.endswith("/results"):
            bid = path.split("/")[-2]
            lines = [json.dumps(self._result(r)) for r in self.requests[bid]]
            return httpx2.Response(200, content=("\n".join(lines) + "\n").encode())
        if method == "GET" and path.startswith("/v1/messages/batches/"):
            if self.fail_retrieves > 0:
                self.fail_retrieves -= 1
                return httpx2.Response(
                    529,
                    json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                )
            bid = path.rsplit("/", 1)[1]
            b = self.batches[bid]
            if b["processing_status"] == "in_progress" and self.calls.count(f"GET {path}") >= 2:
                n = len(self.requests[bid])
                b.update(
                    processing_status="ended",
                    ended_at="2025-11-01T13:00:00Z",
                    results_url=f"https://api.anthropic.com/v1/messages/batches/{bid}/results",
                    request_counts={
                        "processing": 0,
                        "succeeded": n - 2,
                        "errored": 1,
                        "canceled": 0,
                        "expired": 1,
                    },
                )
            return httpx2.Response(200, json=b)
        return httpx2.Response(
            404, json={"type": "error", "error": {"type": "not_found_error", "message": path}}
        )

    @staticmethod
    def _result(req: dict[str, Any]) -> dict[str, Any]:
        params = req["params"]
        text = params["messages"][-1]["content"][0]["text"]
        if "too long" in text:
            result = {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "prompt is too long: 210000 tokens",
                    },
                },
            }
        elif "broken" in text:
            result = {"type": "expired"}
        elif "tools" in params:
            schema = params["tools"][0]["input_schema"]
            value = (
                {"choice": "B"}
                if "choice" in schema["properties"]
                else {"stance": "against", "confidence": 4}
            )
            block = {"type": "tool_use", "id": "toolu_01", "name": "answer", "input": value}
            result = {"type": "succeeded", "message": message([block], "tool_use")}
        else:
            result = {"type": "succeeded", "message": message([{"type": "text", "text": "Hello there."}])}
        return {"custom_id": req["custom_id"], "result": result}


ANTHROPIC = "anthropic:claude-haiku-4-5"


def test_anthropic_message_batch_full_lifecycle():
    fake = FakeAnthropic()
    cache = ResponseCache(":memory:")
    reqs = [r.model_copy(update={"messages": (*r.messages,)}) for r in REQUESTS]
    reqs[0] = LLMRequest.chat("Say hello.", system="You are terse.", tag="p1")
    out = run_batch(reqs, ANTHROPIC, cache=cache, client=fake.client(), poll_interval=0, progress=False)

    assert fake.calls.count("POST /v1/messages/batches") == 1
    sent = fake.requests["msgbatch_00"]
    keys = [request_key(r, ANTHROPIC, "claude-haiku-4-5") for r in reqs]
    assert [s["custom_id"] for s in sent] == keys
    assert sent[0]["params"]["system"][0]["text"] == "You are terse."
    assert sent[0]["params"]["model"] == "claude-haiku-4-5" and sent[0]["params"]["max_tokens"] == 256
    assert sent[1]["params"]["tool_choice"] == {"type": "tool", "name": "answer"}

    hello, opinion, choice, too_long, expired = out
    assert isinstance(hello, LLMResponse) and hello.text == "Hello there."
    # claude-haiku-4-5 per 1M: input 1.00, cache read 0.10, output 5.00; batch = half.
    # usage: 50 uncached input + 1000 cache reads, 20 output:
    # (50 * 0.50 + 1000 * 0.05 + 20 * 2.50) / 1e6 = (25 + 50 + 50) / 1e6 = 1.25e-4 USD
    assert hello.usage.input_tokens == 1050 and hello.usage.cached_input_tokens == 1000
    assert hello.cost_usd == pytest.approx(1.25e-4, rel=1e-12)
    assert isinstance(opinion, LLMResponse) and opinion.parsed == {"stance": "against", "confidence": 4}
    assert isinstance(choice, LLMResponse) and choice.choice == "B"
    assert isinstance(too_long, LLMFailure) and too_long.kind == "invalid_request"
    assert "prompt is too long" in too_long.reason
    assert isinstance(expired, LLMFailure) and expired.kind == "timeout" and expired.tag == "p5"
    assert len(cache) == 3 and len(cache.failures()) == 2
    assert batch_jobs(cache)[["provider", "status"]].values.tolist() == [["anthropic", "ended"]]


def test_anthropic_resume_after_crash():
    fake = FakeAnthropic(fail_retrieves=1)
    cache = ResponseCache(":memory:")
    with pytest.raises(PersonaLabError) as err:
        run_batch(REQUESTS, ANTHROPIC, cache=cache, client=fake.client(), poll_interval=0, progress=False)
    assert "msgbatch_00" in str(err.value)
    out = run_batch(REQUESTS, ANTHROPIC, cache=cache, client=fake.client(), poll_interval=0, progress=False)
    assert fake.calls.count("POST /v1/messages/batches") == 1
    assert [type(x).__name__ for x in out] == ["LLMResponse"] * 3 + ["LLMFailure"] * 2


def test_progress_lines_go_to_stderr(capsys: pytest.CaptureFixture[str]):
    run_batch(
        REQUESTS[:1],
        ANTHROPIC,
        cache=ResponseCache(":memory:"),
        client=FakeAnthropic().client(),
        poll_interval=0,
    )
    err = capsys.readouterr().err
    assert "submitted batch msgbatch_00 with 1 request(s)" in err
    assert "msgbatch_00 in_progress 0/1 done" in err and "msgbatch_00 ended: 1 answered, 0 failed" in err


def test_batch_price_override_from_config():
    cfg = LLMConfig(prices={"my-model": (2.0, 1.0, 8.0)})
    fake = FakeOpenAI(
        lambda body: (200, completion("ok", prompt_tokens=1000, cached=0, completion_tokens=500))
    )
    out = run_batch(
        [LLMRequest.chat("hi")],
        "openai:my-model",
        cache=ResponseCache(":memory:"),
        config=cfg,
        client=fake.client(),
        poll_interval=0,
        progress=False,
    )
    # (1000 * 2.0 + 500 * 8.0) / 1e6 * 0.5 = 6000 / 1e6 * 0.5 = 0.003 USD
    assert out[0].cost_usd == pytest.approx(0.003, rel=1e-12)
