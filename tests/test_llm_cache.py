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
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    CACHE_FILENAME,
    LLMFailure,
    LLMRequest,
    LLMResponse,
    Message,
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


# ---- damaged files ---------------------------------------------------------------------------------------


def _filled_cache(path: Path, n: int) -> list[str]:
    reqs = [LLMRequest.chat(f"question {i}") for i in range(n)]
    keys = [request_key(r, "b", "m") for r in reqs]
    with ResponseCache(path) as cache:
        cache.put_many(
            [
                (k, r, resp(f"answer {i} " * 20), f"t{i}")
                for i, (k, r) in enumerate(zip(keys, reqs, strict=True))
            ]
        )
    return keys


def _damage_data_pages(path: Path) -> None:
    """Overwrite every page after the first eight (the header page and the tables' root pages stay intact)
    with garbage: the file still opens, its rows are unreadable."""
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) // page > 40  # 300 responses of ~200 characters: the rows fill pages 9 and after
    for number in range(9, len(data) // page + 1):  # 1-based page numbers
        start = (number - 1) * page
        data[start : start + page] = bytes((i * 37 + number) % 251 for i in range(page))
    path.write_bytes(bytes(data))


def test_damaged_data_pages_are_the_same_clear_error_everywhere_and_never_rewritten(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from persona_lab.commands import llm as _cli
    from persona_lab.llm import run_requests

    db = tmp_path / CACHE_FILENAME
    keys = _filled_cache(db, 300)
    _damage_data_pages(db)
    before = db.read_bytes()
    message = f"{db}: not a readable response cache (database disk image is malformed); move the file away"
    cache = ResponseCache(db)  # the header and the schema are intact: the damage shows on first read
    for operation in (
        lambda: cache.get_many(keys),
        lambda: len(cache),
        lambda: keys[0] in cache,
        lambda: cache.responses(),
        lambda: cache.totals(),
        lambda: cache.put(keys[0], LLMRequest.chat("question 0"), resp("again")),
        lambda: run_requests([LLMRequest.chat("question 1")], _Never(), cache=cache, progress=False),
    ):
        with pytest.raises(PersonaLabError) as err:
            operation()
        assert str(err.value).startswith(message), err.value
    cache.close()
    stats = CliRunner().invoke(_cli.llm_app, ["stats", str(tmp_path)])
    assert stats.exit_code == 2 and message in stats.output, stats.output
    assert db.read_bytes() == before  # nothing repaired, nothing rewritten


class _Never:
    spec, model = "b", "m"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise AssertionError("a damaged cache must stop the stage before any call")


def test_errors_that_are_not_the_files_fault_are_not_called_damage(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        len(cache)  # a bug in the caller, not a damaged file: no advice to move the file away


# ---- bulk reads ------------------------------------------------------------------------------------------


def test_get_many_by_lookup_and_by_scan_build_the_same_responses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from persona_lab.llm import _cache

    reqs = [LLMRequest.chat(f"q{i}", json_schema={"type": "object"} if i % 2 else None) for i in range(10)]
    keys = [request_key(r, "openai:gpt-4o", "gpt-4o") for r in reqs]
    usage = Usage(input_tokens=7, cached_input_tokens=2, cache_write_input_tokens=1, output_tokens=3)
    items = [
        (k, r, resp(f"a{i}", parsed={"i": i, "é": [True]} if i % 2 else None, usage=usage, cost_usd=0.25), "")
        for i, (k, r) in enumerate(zip(keys, reqs, strict=True))
    ]
    with ResponseCache(tmp_path) as cache:
        cache.put_many(items)
        scan = cache.get_many(keys[:6])  # 6 of 10 rows: one pass over the table
        monkeypatch.setattr(_cache, "_SCAN_SHARE", 2.0)
        lookup = cache.get_many(keys[:6] + ["absent"])  # the same by key lookups
    assert sorted(scan) == sorted(lookup) == sorted(keys[:6])
    for i, k in enumerate(keys[:6]):
        expected = LLMResponse.model_validate(
            items[i][2].model_dump() | {"key": k, "cached": True, "latency_s": 0.0}
        )
        for got in (scan[k], lookup[k]):
            assert got == expected and got.model_dump() == expected.model_dump()
            assert got.model_fields_set == expected.model_fields_set
            assert got.key is k  # the caller's key string, not a copy
    # they behave as any model: copies, assignment, JSON
    a = scan[keys[1]]
    b = a.model_copy(update={"text": "changed"})
    a.usage.output_tokens = 99
    assert (b.text, a.text, a.usage.output_tokens, lookup[keys[1]].usage.output_tokens) == (
        "changed",
        "a1",
        99,
        3,
    )
    assert LLMResponse.model_validate_json(a.model_dump_json()) == a


def test_paused_gc_is_reentrant_and_restores_the_collector() -> None:
    import gc

    from persona_lab.llm._sqlite import paused_gc

    assert gc.isenabled()
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_failures_for_and_bulk_records(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        assert cache.failures_for(["k1"]) == {}
        cache.record_failures(
            [
                LLMFailure(
                    key="k1", kind="unparseable", reason="r1", attempts=1, backend="b", model="m", tag="t1"
                ),
                LLMFailure(key="k2", kind="not_attempted", reason="r2", attempts=0, backend="b", model="m"),
            ]
        )
        got = cache.failures_for(["k1", "k2", "k3"])
    assert sorted(got) == ["k1", "k2"]
    assert got["k1"] == LLMFailure(
        key="k1", kind="unparseable", reason="r1", attempts=1, backend="b", model="m", tag="t1", cached=True
    )
    assert (got["k2"].kind, got["k2"].attempts) == ("not_attempted", 0)
    with ResponseCache(tmp_path) as cache:  # a kind this version does not know (another version wrote it)
        cache.connection.execute("UPDATE failures SET kind = 'degenerate' WHERE key = 'k1'")
        k1 = cache.failures_for(["k1"])["k1"]
    assert (k1.kind, k1.reason) == ("other", "degenerate: r1")


# ---- bulk keys -------------------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(
        st.tuples(st.sampled_from(["system", "user", "assistant"]), _text), min_size=1, max_size=3
    ),
    temperature=st.floats(allow_nan=False, allow_infinity=False),
    max_tokens=st.integers(min_value=-(2**70), max_value=2**70),
    seed=st.integers(),
    schema=st.none() | st.dictionaries(_text, _json, max_size=3),
    choices=st.none() | st.lists(_text, max_size=3).map(tuple),
    sample_index=st.integers(min_value=0, max_value=10**6),
    backend=_text,
)
def test_bulk_keys_equal_the_reference_keys(
    messages, temperature, max_tokens, seed, schema, choices, sample_index, backend
) -> None:
    from persona_lab.llm._keys import request_json, request_jsons, request_keys

    req = LLMRequest(
        messages=tuple(Message(role=r, content=c) for r, c in messages),
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        json_schema=schema,
        choices=choices,
        sample_index=sample_index,
    )
    odd = req.model_copy(update={"temperature": float("nan"), "seed": True})  # unvalidated values too
    reqs = [req, req, odd]
    assert list(request_jsons(reqs, backend, "m")) == [request_json(r, backend, "m") for r in reqs]
    assert request_keys(reqs, backend, "m") == [request_key(r, backend, "m") for r in reqs]


def test_the_key_of_a_request_is_pinned() -> None:
    # the cache key must never change silently: every existing cache would stop replaying
    from persona_lab.llm._keys import request_keys

    req = LLMRequest.chat(
        "What is fair?", system="You are persona 1.", json_schema={"type": "object"}, seed=3
    )
    assert request_key(req, "openai:gpt-4o", "gpt-4o") == request_keys([req], "openai:gpt-4o", "gpt-4o")[0]
    assert request_key(req, "openai:gpt-4o", "gpt-4o") == "82644668d0c50e55f81a52b3240d112d"
