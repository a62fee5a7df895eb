"""The runner: send many requests to one backend, with the cache, limits, retries and progress.

What ``arun_requests`` does, in order:

1. Key every request (``request_key``: backend, model, messages, parameters, schema, choices, sample index)
   and replay the keys already in the cache, with zero calls. Identical requests in one stage are sent once.
2. Send the rest sorted by their messages, so requests that share a prefix (a system prompt, a persona, a
   few-shot dialogue) go out together and hit the providers' prompt caches while they are warm.
3. At most ``LLMConfig.concurrency`` calls in flight per backend, client-side token buckets for
   ``requests_per_minute`` and ``tokens_per_minute`` (tokens estimated as prompt + ``max_tokens``).
4. Retry rate limits, server errors, timeouts and connection errors up to ``LLMConfig.max_retries`` times,
   with exponential backoff and jitter, waiting at least the server's ``Retry-After``. Never retry invalid
   requests, refusals or unparseable answers (recorded per item). An authentication error stops the stage
   with a ``PersonaLabError``: every further call would fail too.
5. Commit each response to the cache as it completes (crash-safe resume), record each final failure in the
   cache's ``failures`` table, and return one ``LLMResponse | LLMFailure`` per request, in input order.

Progress (calls done, cache hits, failures, tokens, cost) is a rich progress bar in a terminal and
``mo.status.progress_bar`` inside a marimo notebook.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from persona_lab.errors import PersonaLabError
from persona_lab.llm._cache import ResponseCache, key_of_json, request_json
from persona_lab.llm._cost import cost_usd, request_input_tokens, resolve_price
from persona_lab.llm._spec import API_KEY_ENV, get_backend, parse_spec
from persona_lab.llm._types import Backend, LLMError, LLMFailure, LLMRequest, LLMResponse

if TYPE_CHECKING:
    from persona_lab.config import LLMConfig
    from persona_lab.llm._cost import ModelPrice

Result = LLMResponse | LLMFailure
ProgressMode = Literal["auto", "rich", "marimo", "none"]


# -- retry policy and rate limits -------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures.

    The n-th retry waits ``min(max_delay_s, base_delay_s * 2**(n-1))`` times a uniform factor in
    ``[0.5, 1]`` ("equal jitter"), and at least the server's ``Retry-After`` (capped at
    ``max_retry_after_s``). Tests use tiny delays.
    """

    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 600.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1)) * rng.uniform(0.5, 1.0)
        if retry_after is not None:
            return max(backoff, min(retry_after, self.max_retry_after_s))
        return backoff


class RateLimiter:
    """A token bucket refilled at ``per_minute / 60`` per second, holding at most one second's worth.

    ``acquire(n)`` takes ``n`` units at once and then sleeps until the bucket is out of debt, so a request
    larger than the bucket still goes through and the long-run rate never exceeds ``per_minute``.
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise PersonaLabError(f"rate limit must be positive, got {per_minute} per minute")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    async def acquire(self, n: float = 1.0) -> float:
        """Take ``n`` units; returns the seconds waited."""
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._last) * self.rate)
        self._last = now
        self.level -= n
        wait = -self.level / self.rate if self.level < 0 else 0.0
        if wait > 0:
            await self._sleep(wait)
        return wait


@dataclass
class _Limits:
    semaphore: asyncio.Semaphore
    rpm: RateLimiter | None
    tpm: RateLimiter | None


_LIMITS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int, int | None, int | None], _Limits]
]
_LIMITS = weakref.WeakKeyDictionary()


def _limits_for(spec: str, cfg: LLMConfig) -> _Limits:
    """The concurrency and rate limits shared by every stage running on one backend in this event loop."""
    loop = asyncio.get_running_loop()
    per_loop = _LIMITS.setdefault(loop, {})
    k = (spec, cfg.concurrency, cfg.requests_per_minute, cfg.tokens_per_minute)
    if k not in per_loop:
        per_loop[k] = _Limits(
            asyncio.Semaphore(max(1, cfg.concurrency)),
            RateLimiter(cfg.requests_per_minute) if cfg.requests_per_minute else None,
            RateLimiter(cfg.tokens_per_minute) if cfg.tokens_per_minute else None,
        )
    return per_loop[k]


# -- statistics and progress ------------------------------------------------------------------------------
@dataclass
class RunStats:
    """Live counters of one stage (read by the progress display)."""

    total: int = 0
    done: int = 0
    cache_hits: int = 0
    calls: int = 0
    failures: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    finished: bool = False

    def line(self) -> str:
        """One-line summary: done/total, hits, failures, tokens, cached share, cost."""
        share = self.cached_input_tokens / self.input_tokens if self.input_tokens else 0.0
        return (
            f"{self.done}/{self.total} done · {self.cache_hits} cached · {self.failures} failed · "
            f"{self.input_tokens:,} in ({share:.0%} prompt-cached) / {self.output_tokens:,} out tokens · "
            f"${self.cost_usd:.4f}"
        )


@dataclass(frozen=True)
class RunSummary:
    """Totals over a stage's results.

    Attributes:
        requests: Number of requests.
        responses: Successful answers (including cache hits).
        cache_hits: Answers replayed from the response cache.
        failures: Failures by kind.
        input_tokens, cached_input_tokens, output_tokens: Usage of the answers that were not replayed.
        cost_usd: Cost of the answers that were not replayed.
        cached_token_share: ``cached_input_tokens / input_tokens`` (provider prompt-cache reads), 0 if none.
    """

    requests: int
    responses: int
    cache_hits: int
    failures: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached_token_share: float = 0.0


def summarize(results: Sequence[Result]) -> RunSummary:
    """Summarize a stage's results (see ``RunSummary``)."""
    fails: dict[str, int] = {}
    hits = resp = inp = cached = out = 0
    cost = 0.0
    for r in results:
        if isinstance(r, LLMFailure):
            fails[r.kind] = fails.get(r.kind, 0) + 1
            continue
        resp += 1
        if r.cached:
            hits += 1
            continue
        inp += r.usage.input_tokens
        cached += r.usage.cached_input_tokens
        out += r.usage.output_tokens
        cost += r.cost_usd
    return RunSummary(len(results), resp, hits, fails, inp, cached, out, cost, cached / inp if inp else 0.0)


class _View:
    """A progress display refreshed from ``RunStats`` by a poller (never from the hot path)."""

    def refresh(self, stats: RunStats) -> None: ...

    def close(self, stats: RunStats) -> None: ...


class _RichView(_View):
    def __init__(self, desc: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True),
            auto_refresh=False,
            transient=False,
        )
        self._task = self._progress.add_task(desc or "LLM calls", total=total, info="")
        self._progress.start()

    def refresh(self, stats: RunStats) -> None:
        info = (
            f"{stats.cache_hits} cached · {stats.failures} failed · "
            f"{stats.input_tokens + stats.output_tokens:,} tok · ${stats.cost_usd:.4f}"
        )
        self._progress.update(self._task, completed=stats.done, info=info)
        self._progress.refresh()

    def close(self, stats: RunStats) -> None:
        self.refresh(stats)
        self._progress.stop()


class _MarimoView(_View):
    def __init__(self, desc: str, total: int) -> None:
        import marimo as mo

        self._cm = mo.status.progress_bar(
            total=max(total, 1), title=desc or "LLM calls", remove_on_exit=False
        )
        self._bar = self._cm.__enter__()
        self._shown = 0

    def refresh(self, stats: RunStats) -> None:
        step = stats.done - self._shown
        self._shown = stats.done
        self._bar.update(increment=step, subtitle=stats.line())

    def close(self, stats: RunStats) -> None:
        self.refresh(stats)
        self._cm.__exit__(None, None, None)


def _in_marimo() -> bool:
    if "marimo" not in sys.modules:
        return False
    try:
        import marimo as mo

        return bool(mo.running_in_notebook())
    except Exception:  # noqa: BLE001 - any failure means "not in a notebook"
        return False


def _make_view(progress: bool | str, desc: str, total: int) -> _View:
    mode = {True: "auto", False: "none"}.get(progress, progress) if isinstance(progress, bool) else progress
    if mode not in ("auto", "rich", "marimo", "none"):
        raise PersonaLabError(f"progress={progress!r}: expected True, False, 'rich', 'marimo' or 'none'")
    if mode == "auto":
        mode = "marimo" if _in_marimo() else ("rich" if sys.stderr.isatty() else "none")
    if mode == "rich":
        return _RichView(desc, total)
    if mode == "marimo":
        return _MarimoView(desc, total)
    return _View()


# -- the runner -------------------------------------------------------------------------------------------
class _AuthAbort(Exception):
    def __init__(self, failure: LLMFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _provider(backend: Backend) -> str | None:
    try:
        return parse_spec(backend.spec).provider
    except PersonaLabError:
        return None


def _price(backend: Backend, cfg: LLMConfig) -> ModelPrice | None:
    try:
        parsed = parse_spec(backend.spec)
    except PersonaLabError:
        return None
    return resolve_price(parsed.provider, backend.model, self_hosted=parsed.self_hosted, prices=cfg.prices)


def _auth_message(backend: Backend, reason: str) -> str:
    provider = backend.spec.partition(":")[0]
    var = API_KEY_ENV.get(provider)
    hint = f"check {var}" if var else "check the server's credentials"
    return f"backend {backend.spec!r}: authentication failed, stopping the stage ({reason}); {hint}"


async def arun_requests(
    requests: Sequence[LLMRequest],
    backend: str | Backend,
    *,
    cache: ResponseCache | Path | str | None,
    config: LLMConfig | None = None,
    progress: bool | str = True,
    desc: str = "",
    retry: RetryPolicy | None = None,
    stats: RunStats | None = None,
) -> list[Result]:
    """Answer ``requests`` on ``backend`` (async); see the module docstring for what happens.

    Args:
        requests: The requests; duplicates are answered once.
        backend: A backend spec (``openai:gpt-4o``) or a ``Backend`` object.
        cache: A ``ResponseCache``, a path (a run directory or a ``.sqlite`` file), or ``None`` (no cache).
        config: Concurrency, rate limits, retries, prices, batch mode; defaults to ``LLMConfig()``.
        progress: ``True`` (marimo bar in a notebook, rich bar in a terminal), ``False``, or a mode name
            (``"rich"``, ``"marimo"``, ``"none"``).
        desc: Label of the progress bar.
        retry: Backoff policy (tests pass tiny delays).
        stats: Live counters to update (the sync wrapper reads them for its progress display).

    Returns:
        One ``LLMResponse`` (``cached=True`` when replayed) or ``LLMFailure`` per request, in input order.

    Raises:
        PersonaLabError: on an authentication error (every call would fail), a bad spec or missing key.
    """
    from persona_lab.config import LLMConfig

    cfg = config or LLMConfig()
    policy = retry or RetryPolicy()
    own_backend = isinstance(backend, str)
    be: Backend = get_backend(backend, config=cfg) if isinstance(backend, str) else backend
    own_cache = cache is not None and not isinstance(cache, ResponseCache)
    store: ResponseCache | None = ResponseCache(cache) if own_cache else cache  # type: ignore[arg-type]
    st = stats if stats is not None else RunStats()
    view = _make_view(progress, desc, len(requests)) if stats is None else _View()
    poller: asyncio.Task[None] | None = None
    try:
        if cfg.batch and _provider(be) in ("openai", "anthropic"):
            if store is None:
                raise PersonaLabError("batch mode needs a response cache (pass cache=run directory)")
            from persona_lab.llm._batch import run_batch

            show = progress not in (False, "none")
            return await asyncio.to_thread(
                run_batch, requests, be.spec, cache=store, config=cfg, progress=show
            )

        if type(view) is not _View:

            async def poll() -> None:
                while True:
                    view.refresh(st)
                    await asyncio.sleep(0.1)

            poller = asyncio.create_task(poll())
        return await _run(list(requests), be, store, cfg, policy, st)
    finally:
        st.finished = True
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        view.close(st)
        if own_cache and store is not None:
            store.close()
        if own_backend and hasattr(be, "aclose"):
            with contextlib.suppress(Exception):
                await be.aclose()


async def _run(
    requests: list[LLMRequest],
    be: Backend,
    store: ResponseCache | None,
    cfg: LLMConfig,
    policy: RetryPolicy,
    st: RunStats,
) -> list[Result]:
    n = len(requests)
    st.total = n
    spec, model = be.spec, be.model
    blobs = [request_json(r, spec, model) for r in requests]
    keys = [key_of_json(b) for b in blobs]
    results: list[Result | None] = [None] * n

    # 1. replay from the cache
    hits = store.get_many(keys) if store is not None else {}
    pending: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        hit = hits.get(k)
        if hit is not None:
            results[i] = hit
        else:
            pending.setdefault(k, []).append(i)
    st.cache_hits = st.done = n - sum(len(v) for v in pending.values())
    pending_json = {k: blobs[v[0]] for k, v in pending.items()}
    del blobs
    if not pending:
        return results  # type: ignore[return-value]

    # 2. shared prefixes together
    order = sorted(pending, key=lambda k: [(m.role, m.content) for m in requests[pending[k][0]].messages])
    queue = iter(order)
    limits = _limits_for(spec, cfg)
    price = _price(be, cfg)
    rng = random.Random()
    max_attempts = cfg.max_retries + 1

    async def call(req: LLMRequest, key: str) -> Result:
        attempt = 0
        while True:
            attempt += 1
            if limits.rpm is not None:
                await limits.rpm.acquire(1)
            if limits.tpm is not None:
                await limits.tpm.acquire(request_input_tokens(req) + req.max_tokens)
            try:
                async with limits.semaphore:
                    resp = await be.complete(req)
            except LLMError as e:
                if e.kind == "auth":
                    raise _AuthAbort(
                        LLMFailure(
                            key=key,
                            kind="auth",
                            reason=e.reason,
                            backend=spec,
                            model=model,
                            attempts=attempt,
                            tag=req.tag,
                        )
                    ) from None
                if e.transient and attempt < max_attempts:
                    await asyncio.sleep(policy.delay(attempt, e.retry_after, rng))
                    continue
                return LLMFailure(
                    key=key,
                    kind=e.kind,
                    reason=e.reason,
                    backend=spec,
                    model=model,
                    attempts=attempt,
                    tag=req.tag,
                )
            except PersonaLabError:
                raise
            except Exception as e:  # noqa: BLE001 - a backend bug is recorded per item, never drops an item
                return LLMFailure(
                    key=key,
                    kind="other",
                    reason=f"{type(e).__name__}: {e}",
                    backend=spec,
                    model=model,
                    attempts=attempt,
                    tag=req.tag,
                )
            update: dict[str, Any] = {"key": key, "backend": spec, "model": model, "cached": False}
            if price is not None:
                update["cost_usd"] = cost_usd(resp.usage, price)
            return resp.model_copy(update=update)

    def settle(key: str, req: LLMRequest, out: Result) -> None:
        if isinstance(out, LLMResponse):
            if store is not None:
                store.put(key, req, out, tag=req.tag, request_json=pending_json[key])
            st.calls += 1
            u = out.usage
            st.input_tokens += u.input_tokens
            st.cached_input_tokens += u.cached_input_tokens
            st.output_tokens += u.output_tokens
            st.cost_usd += out.cost_usd
        else:
            if store is not None:
                store.record_failure(out)
            st.failures += len(pending[key])
        for i in pending[key]:
            results[i] = out
        st.done += len(pending[key])

    async def worker() -> None:
        for key in queue:
            req = requests[pending[key][0]]
            try:
                out = await call(req, key)
            except _AuthAbort as abort:
                settle(key, req, abort.failure)
                raise
            settle(key, req, out)

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(max(1, cfg.concurrency), len(order))):
                tg.create_task(worker())
    except* _AuthAbort as group:
        abort = group.exceptions[0]
        assert isinstance(abort, _AuthAbort)
        raise PersonaLabError(_auth_message(be, abort.failure.reason)) from None
    except* PersonaLabError as group:  # e.g. a local model file that does not load: the user's error, as is
        raise group.exceptions[0] from None
    return results  # type: ignore[return-value]


# -- the sync wrapper -------------------------------------------------------------------------------------
_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process in a daemon thread: the sync API runs every stage on it, so backend
    clients (HTTP connection pools) are reused across calls and the API works inside a running loop."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="persona-lab-llm", daemon=True).start()
            _LOOP = loop
        return _LOOP


def run_requests(
    requests: Sequence[LLMRequest],
    backend: str | Backend,
    *,
    cache: ResponseCache | Path | str | None,
    config: LLMConfig | None = None,
    progress: bool | str = True,
    desc: str = "",
    retry: RetryPolicy | None = None,
) -> list[Result]:
    """Answer ``requests`` on ``backend`` and wait (the sync form of ``arun_requests``, same arguments).

    Works from plain scripts and from inside a running event loop (a marimo or Jupyter cell): the stage
    runs on a background event loop while this thread draws the progress bar.

    Returns:
        One ``LLMResponse`` or ``LLMFailure`` per request, in input order.
    """
    stats = RunStats(total=len(requests))
    view = _make_view(progress, desc, len(requests))
    # with ``stats`` given, arun_requests draws nothing itself; ``progress`` still reaches the batch APIs
    coro = arun_requests(
        requests, backend, cache=cache, config=config, progress=progress, desc=desc, retry=retry, stats=stats
    )
    fut = asyncio.run_coroutine_threadsafe(coro, _background_loop())
    try:
        while True:
            try:
                return fut.result(timeout=0.1)
            except TimeoutError:
                view.refresh(stats)
    except KeyboardInterrupt:
        fut.cancel()
        with contextlib.suppress(Exception):
            fut.result(timeout=5)
        raise
    finally:
        view.close(stats)
