"""The runner: order, deduplication, prefix ordering, concurrency, rate limits, backoff, resume, event loops."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from persona_lab.config import LLMConfig
from persona_lab.errors import PersonaLabError
from persona_lab.llm import (
    BackendUnavailable,
    LLMError,
    LLMFailure,
    LLMRequest,
    LLMResponse,
    RateLimiter,
    ResponseCache,
    RetryPolicy,
    RunStats,
    Usage,
    arun_requests,
    run_requests,
    summarize,
)

FAST = RetryPolicy(base_delay_s=0.001, max_delay_s=0.002)


class Echo:
    """A backend that answers the upper-cased last message, counting calls and the peak of calls in flight."""

    spec = "echo"
    model = "echo-1"

    def __init__(self, delay: float = 0.0, fail: dict[str, list[LLMError]] | None = None) -> None:
        self.delay = delay
        self.calls: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.fail = fail or {}

    async def complete(self, request: LLMRequest) -> LLMResponse:
        text = request.messages[-1].content
        self.calls.append(text)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            queue = self.fail.get(text)
            if queue:
                raise queue.pop(0)
            return LLMResponse(text=text.upper(), usage=Usage(input_tokens=len(text), output_tokens=1))
        finally:
            self.in_flight -= 1


def cfg(**kw: object) -> LLMConfig:
    return LLMConfig(**kw)


def test_input_order_duplicates_and_prefix_ordering(tmp_path: Path) -> None:
    be = Echo()
    reqs = [
        LLMRequest.chat("b2", system="persona B"),
        LLMRequest.chat("a1", system="persona A"),
        LLMRequest.chat("b1", system="persona B"),
        LLMRequest.chat("a1", system="persona A"),  # duplicate of item 1: answered once
        LLMRequest.chat("a2", system="persona A"),
    ]
    res = run_requests(reqs, be, cache=tmp_path, config=cfg(concurrency=1), progress=False)
    assert [r.text for r in res] == ["B2", "A1", "B1", "A1", "A2"]
    assert res[1].key == res[3].key
    # sent sorted by messages: persona A's requests together, then persona B's
    assert be.calls == ["a1", "a2", "b1", "b2"]


def test_replay_from_cache_zero_calls_and_cached_flag(tmp_path: Path) -> None:
    be = Echo()
    reqs = [LLMRequest.chat(f"q{i}") for i in range(30)]
    first = run_requests(reqs, be, cache=tmp_path, progress=False)
    assert len(be.calls) == 30 and not any(r.cached for r in first)
    second = run_requests(reqs + [LLMRequest.chat("new")], be, cache=tmp_path, progress=False)
    assert len(be.calls) == 31 and be.calls[-1] == "new"
    assert all(r.cached for r in second[:30]) and not second[30].cached
    s = summarize(second)
    assert (s.requests, s.responses, s.cache_hits, s.input_tokens) == (31, 31, 30, 3)


def test_parameters_and_sample_index_change_the_key(tmp_path: Path) -> None:
    be = Echo()
    base = LLMRequest.chat("q")
    variants = [
        base,
        base.model_copy(update={"temperature": 0.7}),
        base.model_copy(update={"sample_index": 1}),
        base.model_copy(update={"seed": 3}),
        base.model_copy(update={"max_tokens": 9}),
        base.model_copy(update={"choices": ("Q", "R")}),
        base.model_copy(update={"tag": "label only"}),  # the tag is not part of the key
    ]
    res = run_requests(variants, be, cache=tmp_path, progress=False)
    assert len({r.key for r in res}) == 6 and res[6].key == res[0].key
    assert len(be.calls) == 6


def test_concurrency_is_bounded() -> None:
    be = Echo(delay=0.01)
    run_requests(
        [LLMRequest.chat(f"q{i}") for i in range(40)],
        be,
        cache=None,
        config=cfg(concurrency=3),
        progress=False,
    )
    assert be.peak == 3


def test_transient_errors_retried_then_recorded(tmp_path: Path) -> None:
    be = Echo(
        fail={
            "flaky": [LLMError("server", "500"), LLMError("rate_limit", "429")],
            "down": [LLMError("connection", "refused")] * 10,
            "bad": [LLMError("invalid_request", "context length exceeded")],
        }
    )
    reqs = [LLMRequest.chat(t, tag=f"t/{t}") for t in ("ok", "flaky", "down", "bad")]
    res = run_requests(reqs, be, cache=tmp_path, config=cfg(max_retries=3), progress=False, retry=FAST)
    assert res[0].text == "OK" and res[1].text == "FLAKY"
    assert isinstance(res[2], LLMFailure) and (res[2].kind, res[2].attempts, res[2].tag) == (
        "connection",
        4,
        "t/down",
    )
    assert isinstance(res[3], LLMFailure) and (res[3].kind, res[3].attempts) == ("invalid_request", 1)
    assert be.calls.count("flaky") == 3 and be.calls.count("down") == 4 and be.calls.count("bad") == 1
    with ResponseCache(tmp_path) as cache:
        f = cache.failures().set_index("tag")
        assert f.loc["t/down", "kind"] == "connection" and f.loc["t/down", "attempts"] == 4
        assert f.loc["t/bad", "reason"] == "context length exceeded"
    # a rerun replays the recorded failures as failures, with no call
    be2 = Echo()
    res2 = run_requests(reqs, be2, cache=tmp_path, progress=False)
    assert be2.calls == [] and [r.cached for r in res2] == [True, True, True, True]
    assert [(r.kind, r.attempts, r.tag) for r in res2[2:]] == [
        ("connection", 4, "t/down"),
        ("invalid_request", 1, "t/bad"),
    ]
    assert summarize(res2).replayed_failures == 2
    # with retry_failures it sends only the failed items; a success clears the failure row
    res3 = run_requests(reqs, be2, cache=tmp_path, config=cfg(retry_failures=True), progress=False)
    assert sorted(be2.calls) == ["bad", "down"] and all(isinstance(r, LLMResponse) for r in res3)
    assert [r.cached for r in res3] == [True, True, False, False]
    with ResponseCache(tmp_path) as cache:
        assert cache.failures().empty and len(cache) == 4


def test_backend_exception_is_recorded_not_dropped(tmp_path: Path) -> None:
    class Broken(Echo):
        async def complete(self, request: LLMRequest) -> LLMResponse:
            if request.messages[-1].content == "boom":
                raise KeyError("missing field")
            return await super().complete(request)

    res = run_requests(
        [LLMRequest.chat("boom"), LLMRequest.chat("fine")], Broken(), cache=tmp_path, progress=False
    )
    assert isinstance(res[0], LLMFailure) and res[0].kind == "other" and "KeyError" in res[0].reason
    assert res[1].text == "FINE"


def test_a_backends_user_error_reaches_the_caller_as_is(tmp_path: Path) -> None:
    # e.g. a GGUF file that exists but does not load: one PersonaLabError, not an ExceptionGroup
    class Unloadable(Echo):
        async def complete(self, request: LLMRequest) -> LLMResponse:
            raise PersonaLabError("local backend: cannot load /m.gguf as a GGUF model")

    reqs = [LLMRequest.chat(f"q{i}") for i in range(3)]
    with pytest.raises(PersonaLabError, match="cannot load /m.gguf"):
        run_requests(reqs, Unloadable(), cache=tmp_path, config=cfg(concurrency=2), progress=False)


def test_auth_error_stops_the_stage_keeping_completed_calls(tmp_path: Path) -> None:
    be = Echo(fail={"q5": [LLMError("auth", "invalid api key")]})
    reqs = [LLMRequest.chat(f"q{i}") for i in range(10)]
    with pytest.raises(PersonaLabError, match="authentication failed"):
        run_requests(reqs, be, cache=tmp_path, config=cfg(concurrency=1), progress=False)
    with ResponseCache(tmp_path) as cache:
        assert len(cache) == 5  # q0..q4 completed before q5 and stay committed
        assert cache.failures()["kind"].tolist() == ["auth"]


def test_retry_policy_backoff_and_retry_after() -> None:
    p = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0, max_retry_after_s=30.0)
    rng = random.Random(0)
    # equal jitter: retry n waits min(8, 2**(n-1)) * U[0.5, 1]
    for n, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        d = p.delay(n, None, rng)
        assert cap / 2 <= d <= cap
    assert p.delay(1, 12.0, rng) == 12.0  # Retry-After wins when longer
    assert p.delay(1, 1e6, rng) == 30.0  # but is capped
    assert 2.0 <= p.delay(3, 0.5, rng) <= 4.0  # and never shortens the backoff


def test_rate_limiter_exact_schedule() -> None:
    # 120 per minute = 2 per second, bucket of 2. Taking 1 unit at t=0 five times:
    # levels 1, 0, -1 (wait 0.5 s), -2 (wait 1.0 s), -3 (wait 1.5 s), with the clock frozen.
    now = [0.0]
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    async def go() -> None:
        lim = RateLimiter(120, clock=lambda: now[0], sleep=sleep)
        for _ in range(5):
            await lim.acquire(1)
        # after 10 s the bucket refills to its capacity (2), not beyond: -3 + 20 -> 2
        now[0] = 10.0
        assert await lim.acquire(2) == 0.0
        # a request larger than the bucket goes through with debt: 0 - 5 = -5 -> wait 2.5 s
        assert await lim.acquire(5) == 2.5

    asyncio.run(go())
    assert waits == [0.5, 1.0, 1.5, 2.5]


def test_requests_per_minute_limits_the_rate() -> None:
    import time

    be = Echo()
    t0 = time.perf_counter()
    # 600/min = 10/s with a bucket of 10: 15 requests need >= 0.5 s
    run_requests(
        [LLMRequest.chat(f"q{i}") for i in range(15)],
        be,
        cache=None,
        config=cfg(requests_per_minute=600),
        progress=False,
    )
    assert time.perf_counter() - t0 >= 0.45


def test_sync_wrapper_works_inside_a_running_loop() -> None:
    async def inside() -> list:
        # e.g. a marimo or Jupyter cell: a loop is running in this thread
        return run_requests([LLMRequest.chat("x")], Echo(), cache=None, progress=False)

    (r,) = asyncio.run(inside())
    assert r.text == "X"


def test_async_entry_point(tmp_path: Path) -> None:
    res = asyncio.run(
        arun_requests([LLMRequest.chat("a"), LLMRequest.chat("b")], Echo(), cache=tmp_path, progress=False)
    )
    assert [r.text for r in res] == ["A", "B"]


def test_rich_progress_runs(tmp_path: Path) -> None:
    res = run_requests(
        [LLMRequest.chat(f"q{i}") for i in range(5)],
        Echo(delay=0.05),
        cache=None,
        progress="rich",
        desc="demo",
    )
    assert len(res) == 5
    with pytest.raises(PersonaLabError, match="progress"):
        run_requests([LLMRequest.chat("q")], Echo(), cache=None, progress="fancy")


def test_cost_from_price_table_and_overrides(tmp_path: Path, recwarn) -> None:
    class Hosted(Echo):
        spec = "openai:my-finetune"
        model = "my-finetune"

    req = [LLMRequest.chat("abcd")]  # usage: 4 input, 1 output
    (r,) = run_requests(req, Hosted(), cache=None, progress=False)
    assert r.cost_usd == 0.0
    assert any("no price known for openai:my-finetune" in str(w.message) for w in recwarn.list)
    # with a price: 4 * 2.0 + 1 * 10.0 = 18 USD per 1M tokens -> 1.8e-5
    (r,) = run_requests(
        req, Hosted(), cache=None, config=cfg(prices={"my-finetune": (2.0, 1.0, 10.0)}), progress=False
    )
    assert r.cost_usd == pytest.approx(1.8e-5, abs=1e-15)


def test_marimo_progress_outside_a_notebook() -> None:
    # the marimo bar must not break a script run (marimo renders nothing outside its kernel)
    res = run_requests([LLMRequest.chat("q")], Echo(), cache=None, progress="marimo", desc="demo")
    assert res[0].text == "Q"


@pytest.mark.local_model
def test_factory_builds_the_local_backend_lazily() -> None:
    from persona_lab.llm import LocalBackend, get_backend

    be = get_backend("local")
    assert (
        isinstance(be, LocalBackend) and be.spec == "local" and be.model.startswith("SmolLM2-135M-Instruct")
    )


# ---- the circuit breaker --------------------------------------------------------------------------------


class Down(Echo):
    """A backend whose server is gone: every call is a connection error, until ``up`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if not self.up:
            self.calls.append(request.messages[-1].content)
            raise LLMError("connection", "Connection refused")
        return await super().complete(request)


def test_circuit_breaker_stops_a_stage_whose_backend_is_down_and_a_rerun_resumes(tmp_path: Path) -> None:
    be = Down()
    reqs = [LLMRequest.chat(f"q{i}", tag=f"t{i}") for i in range(50)]
    config = cfg(concurrency=1, max_retries=2, circuit_breaker=4)
    with pytest.raises(BackendUnavailable) as err:
        run_requests(reqs, be, cache=tmp_path, config=config, progress=False, retry=FAST)
    # q0 had its 3 attempts, q1 one more: 4 connection errors in a row, then nothing else was sent
    assert be.calls == ["q0", "q0", "q0", "q1"]
    e = err.value
    assert e.backend == "echo" and e.reason == "connection: Connection refused"
    assert str(e) == (
        "backend 'echo' looks down: 4 consecutive connection or timeout errors with no answer in between "
        "(last: connection: Connection refused); stopped the stage with 0 of 50 requests answered and 50 "
        "recorded as not attempted. Check that the server runs and answers, then rerun the same command: "
        "it resumes from the cache and sends only the rest"
    )
    assert [(r.kind, r.tag) for r in e.results] == [("not_attempted", f"t{i}") for i in range(50)]
    assert [r.attempts for r in e.results[:3]] == [3, 0, 0]  # q0 was tried to the end, q1 cut short
    with ResponseCache(tmp_path) as cache:
        assert cache.failures()["kind"].value_counts().to_dict() == {"not_attempted": 50}
    # the server is back: the same command sends everything (not-attempted items are never replayed)
    be.up = True
    res = run_requests(reqs, be, cache=tmp_path, config=config, progress=False, retry=FAST)
    assert [r.text for r in res] == [f"Q{i}" for i in range(50)]
    with ResponseCache(tmp_path) as cache:
        assert cache.failures().empty and len(cache) == 50


def test_an_answer_resets_the_breaker_and_a_failure_of_its_own_stays_recorded(tmp_path: Path) -> None:
    # "bad" fails 3 times in a row with a timeout (its own problem: too slow), the others answer
    be = Echo(fail={"bad": [LLMError("timeout", "slow")] * 3})
    reqs = [LLMRequest.chat(t) for t in ("a", "bad", "b", "c")]
    config = cfg(concurrency=1, max_retries=2, circuit_breaker=4)
    res = run_requests(reqs, be, cache=tmp_path, config=config, progress=False, retry=FAST)
    assert [type(r).__name__ for r in res] == ["LLMResponse", "LLMFailure", "LLMResponse", "LLMResponse"]
    assert (res[1].kind, res[1].attempts) == ("timeout", 3)
    with ResponseCache(tmp_path) as cache:
        assert cache.failures()["kind"].tolist() == ["timeout"]  # recorded once the backend answered again


def test_a_breaker_of_zero_never_stops(tmp_path: Path) -> None:
    be = Down()
    reqs = [LLMRequest.chat(f"q{i}") for i in range(5)]
    config = cfg(concurrency=2, max_retries=1, circuit_breaker=0)
    res = run_requests(reqs, be, cache=tmp_path, config=config, progress=False, retry=FAST)
    assert [r.kind for r in res] == ["connection"] * 5 and len(be.calls) == 10


def test_replayed_failures_count_in_the_progress_counters(tmp_path: Path) -> None:
    be = Echo(fail={"bad": [LLMError("invalid_request", "no")]})
    reqs = [LLMRequest.chat("ok"), LLMRequest.chat("bad"), LLMRequest.chat("bad")]
    run_requests(reqs, be, cache=tmp_path, progress=False)
    stats = RunStats()
    res = asyncio.run(arun_requests(reqs, be, cache=tmp_path, progress=False, stats=stats))
    assert (stats.total, stats.done, stats.cache_hits, stats.failures, stats.calls) == (3, 3, 1, 2, 0)
    assert [r.cached for r in res] == [True, True, True] and be.calls == ["bad", "ok"]


# ---- progress in a log -------------------------------------------------------------------------------------


def test_plain_progress_lines_every_ten_seconds_each_tenth_and_at_the_end() -> None:
    import io

    from persona_lab.llm._progress import LineView

    now = [100.0]
    out = io.StringIO()
    view = LineView("prompts filter", stream=out, clock=lambda: now[0])
    st = RunStats(total=20)
    for t, done in [(1.0, 1), (3.0, 2), (4.0, 3), (15.0, 3), (16.0, 20)]:
        now[0] = 100.0 + t
        st.done = done
        view.refresh(st)
    now[0] = 117.2
    view.close(st)
    tail = " · 0 cached · 0 failed · 0 in (0% prompt-cached) / 0 out tokens · $0.0000"
    assert out.getvalue().splitlines() == [
        f"prompts filter: 2/20 done{tail} · 3 s",  # a new tenth, 3 s after the start
        f"prompts filter: 3/20 done{tail} · 15 s",  # 10 s without a line (the tenth at 1 s came too soon)
        f"prompts filter: 20/20 done{tail} · 17 s",  # the end (all done at 16 s, 1 s after the last line)
    ]


def test_progress_in_a_log_is_plain_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    assert not sys.stderr.isatty()  # as in a log file or CI
    run_requests([LLMRequest.chat("a"), LLMRequest.chat("bb")], Echo(), cache=None, desc="demo")
    err = capsys.readouterr().err
    line = "demo: 2/2 done · 0 cached · 0 failed · 3 in (0% prompt-cached) / 2 out tokens · $0.0000 · "
    assert err.startswith(line) and err.endswith(" s\n") and err[len(line) : -3].isdigit(), err
