"""The response cache: keys, round trips, no duplicates, provenance, bad files, and a kill -9 resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    CACHE_FILENAME,
    LLMFailure,
    LLMRequest,
    LLMResponse,
    ResponseCache,
    Usage,
    request_key,
)
from persona_lab.llm._cache import request_payload


def resp(text: str, **kw: object) -> LLMResponse:
    return LLMResponse(text=text, backend="openai:gpt-4o", model="gpt-4o", **kw)


def test_key_is_stable_and_covers_what_determines_the_answer() -> None:
    r = LLMRequest.chat("Hello", system="S", max_tokens=10)
    k = request_key(r, "openai:gpt-4o", "gpt-4o")
    assert len(k) == 32 and k == request_key(
        LLMRequest.chat("Hello", system="S", max_tokens=10), "openai:gpt-4o", "gpt-4o"
    )
    assert k != request_key(r, "anthropic:gpt-4o", "gpt-4o")
    assert k != request_key(r, "openai:gpt-4o", "gpt-4o-mini")
    assert k != request_key(
        r.model_copy(update={"json_schema": {"type": "object"}}), "openai:gpt-4o", "gpt-4o"
    )
    assert k == request_key(r.model_copy(update={"tag": "x"}), "openai:gpt-4o", "gpt-4o")
    # role boundaries matter: the same text split differently is a different conversation
    a = LLMRequest(messages=({"role": "user", "content": "ab"},))  # type: ignore[arg-type]
    b = LLMRequest(messages=({"role": "user", "content": "a"}, {"role": "user", "content": "b"}))  # type: ignore[arg-type]
    assert request_key(a, "x", "m") != request_key(b, "x", "m")
    assert set(request_payload(r, "x", "m")) == {
        "v", "backend", "model", "messages", "temperature", "max_tokens", "seed", "json_schema", "choices", "sample_index"
    }  # fmt: skip


def test_round_trip_no_duplicates_and_provenance(tmp_path: Path) -> None:
    req = LLMRequest.chat("q", json_schema={"type": "object"}, choices=None, sample_index=2)
    key = request_key(req, "openai:gpt-4o", "gpt-4o")
    with ResponseCache(tmp_path) as cache:
        assert cache.path == tmp_path / CACHE_FILENAME
        usage = Usage(input_tokens=10, cached_input_tokens=4, cache_write_input_tokens=1, output_tokens=3)
        first = resp("{}", parsed={"a": [1, "é"]}, usage=usage, cost_usd=0.5, latency_s=1.25)
        assert cache.put(key, req, first, tag="p1/q1") is True
        assert (
            cache.put(key, req, resp("other"), tag="p1/q1") is False
        )  # never a duplicate, first answer kept
        got = cache.get(key)
        assert got is not None and got.cached and got.key == key
        assert (got.text, got.parsed, got.usage, got.cost_usd, got.latency_s) == (
            "{}",
            {"a": [1, "é"]},
            usage,
            0.5,
            1.25,
        )
        assert cache.request(key) == req
        assert key in cache and len(cache) == 1 and cache.get("nope") is None
        prov = cache.responses()
        assert prov.loc[0, "tag"] == "p1/q1" and prov.loc[0, "model"] == "gpt-4o"
        assert str(prov["created_at"].dt.tz) == "UTC"
        assert cache.totals() == {
            "responses": 1, "failures": 0, "input_tokens": 10, "cached_input_tokens": 4, "output_tokens": 3,
            "cost_usd": 0.5,
        }  # fmt: skip
        assert cache.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_failures_upsert_and_cleared_by_success(tmp_path: Path) -> None:
    req = LLMRequest.chat("q")
    key = request_key(req, "openai:gpt-4o", "gpt-4o")
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.record_failure(
            LLMFailure(key=key, kind="server", reason="500", attempts=7, backend="b", model="m")
        )
        cache.record_failure(
            LLMFailure(key=key, kind="timeout", reason="slow", attempts=7, backend="b", model="m")
        )
        f = cache.failures()
        assert len(f) == 1 and f.loc[0, "kind"] == "timeout" and f.loc[0, "attempts"] == 7
        cache.put(key, req, resp("ok"))
        assert cache.failures().empty


def test_get_many_beyond_one_sql_chunk(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        items = []
        for i in range(1234):
            r = LLMRequest.chat(f"q{i}")
            items.append((request_key(r, "b", "m"), r, resp(f"a{i}"), ""))
        assert cache.put_many(items) == 1234
        got = cache.get_many([k for k, *_ in items] + ["missing"])
        assert len(got) == 1234 and got[items[1000][0]].text == "a1000"


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PersonaLabError, match="junk.sqlite: not a readable response cache"):
        ResponseCache(junk)
    other = tmp_path / "other.sqlite"
    ResponseCache(other).close()
    con = sqlite3.connect(other)
    con.execute("UPDATE meta SET value='99' WHERE name='format'")
    con.commit()
    con.close()
    with pytest.raises(PersonaLabError, match="format 99"):
        ResponseCache(other)


CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from persona_lab.config import LLMConfig
    from persona_lab.llm import LLMRequest, LLMResponse, Usage, run_requests

    log = open(sys.argv[2], "a", buffering=1)

    class Slow:
        spec, model = "slow", "slow-1"
        async def complete(self, request):
            await asyncio.sleep(0.01)
            text = request.messages[-1].content
            log.write(text + "\\n")  # the backend returned (the runner commits right after)
            return LLMResponse(text="answer to " + text, usage=Usage(input_tokens=1, output_tokens=1))

    reqs = [LLMRequest.chat(f"item {i}") for i in range(int(sys.argv[3]))]
    run_requests(reqs, Slow(), cache=sys.argv[1], config=LLMConfig(concurrency=4), progress=False)
    """
)


@pytest.mark.slow
def test_kill_9_resume_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    n = 400
    run_dir, log = tmp_path / "run", tmp_path / "returned.log"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, str(script), str(run_dir), str(log), str(n)], env=env)
    db = run_dir / CACHE_FILENAME
    deadline = time.time() + 60
    while time.time() < deadline:  # kill -9 in the middle of the stage
        if db.exists() and log.exists() and len(log.read_text().splitlines()) >= 60:
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    committed = {t for (t,) in con.execute("SELECT text FROM responses")}
    con.close()
    returned = set(log.read_text().splitlines())
    assert 0 < len(committed) < n
    # every committed answer is whole, and at most the calls in flight (concurrency 4) were lost
    assert committed <= {f"answer to {t}" for t in returned}
    assert len(returned) - len(committed) <= 4

    class Counting:
        spec, model = "slow", "slow-1"
        calls: list[str] = []

        async def complete(self, request: LLMRequest) -> LLMResponse:
            text = request.messages[-1].content
            self.calls.append(text)
            return LLMResponse(text="answer to " + text, usage=Usage(input_tokens=1, output_tokens=1))

    from persona_lab.llm import run_requests

    be = Counting()
    res = run_requests([LLMRequest.chat(f"item {i}") for i in range(n)], be, cache=run_dir, progress=False)
    assert len(be.calls) == n - len(committed)  # resumed: only the missing calls
    assert not {f"answer to {t}" for t in be.calls} & committed
    assert [r.text for r in res] == [f"answer to item {i}" for i in range(n)]
    con = sqlite3.connect(db)
    total, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM responses").fetchone()
    con.close()
    assert total == distinct == n
