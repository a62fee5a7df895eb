"""The runner: send many requests to one backend, with the cache, limits, retries and progress.

What ``arun_requests`` does, in order:

1. Key every request (``request_key``: backend, model, messages, parameters, schema, choices, sample index)
   and replay the keys already in the cache, with zero calls. Identical requests in one stage are sent once.
   A failure recorded by an earlier run is replayed as that failure (``cached=True``), with no call, unless
   ``LLMConfig.retry_failures`` is set; items recorded as ``not_attempted`` or ``auth`` are always sent.
2. Send the rest sorted by their messages, so requests that share a prefix (a system prompt, a persona, a
   few-shot dialogue) go out together and hit the providers' prompt caches while they are warm.
3. At most ``LLMConfig.concurrency`` calls in flight per backend, client-side token buckets for
   ``requests_per_minute`` and ``tokens_per_minute`` (tokens estimated as prompt + ``max_tokens``).
4. Retry rate limits, server errors, timeouts and connection errors up to ``LLMConfig.max_retries`` times,
   with exponential backoff and jitter, waiting at least the server's ``Retry-After``. Never retry invalid
   requests, refusals or unparseable answers (recorded per item). An authentication error stops the stage
   with a ``PersonaLabError``: every further call would fail too. So do ``LLMConfig.circuit_breaker``
   consecutive connection or timeout errors with no answer in between: the backend is down, the stage stops
   at once with ``BackendUnavailable``, and every item without an answer is recorded as ``not_attempted``,
   which the next run sends (rerunning the same command resumes).
5. Commit each response to the cache as it completes (crash-safe resume), record each final failure in the
   cache's ``failures`` table, and return one ``LLMResponse | LLMFailure`` per request, in input order.

Progress (calls done, cache hits, failures, tokens, cost) is shown as ``_progress`` describes: a rich bar in a
terminal, a marimo bar in a notebook, plain periodic lines in a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from persona_lab.errors import PersonaLabError
from persona_lab.llm._cache import ResponseCache, paused_gc
from persona_lab.llm._cost import cost_usd, request_input_tokens, resolve_price
from persona_lab.llm._keys import request_jsons, request_keys
from persona_lab.llm._limits import RateLimiter, RetryPolicy, limits_for
from persona_lab.llm._progress import ProgressMode, RunStats, RunSummary, View, make_view, summarize
from persona_lab.llm._spec import API_KEY_ENV, get_backend, parse_spec
from persona_lab.llm._types import Backend, FailureKind, LLMError, LLMFailure, LLMRequest, LLMResponse

if TYPE_CHECKING:
    from persona_lab.config import LLMConfig
    from persona_lab.llm._cost import ModelPrice

__all__ = [
    "BackendUnavailable",
    "ProgressMode",
    "RateLimiter",
    "RetryPolicy",
    "RunStats",
    "RunSummary",
    "arun_requests",
    "run_requests",
    "summarize",
]

Result = LLMResponse | LLMFailure
OUTAGE_KINDS: frozenset[str] = frozenset({"connection", "timeout"})
"""Errors that say the backend cannot be reached; ``LLMConfig.circuit_breaker`` of them in a row stop a stage."""
ALWAYS_SENT: frozenset[str] = frozenset({"not_attempted", "auth"})
"""Recorded failure kinds that say nothing about the request: the next run sends it again."""


class BackendUnavailable(PersonaLabError):
    """A stage stopped because its backend looks down (see ``LLMConfig.circuit_breaker``).

    Attributes:
        backend: The backend spec.
        reason: The last connection or timeout error.
        results: One ``LLMResponse | LLMFailure`` per request, in input order, as far as the stage got; the
            items without an answer are ``LLMFailure(kind="not_attempted")``, sent again by the next run.
    """

    def __init__(self, message: str, *, backend: str, reason: str, results: list[Result]) -> None:
        super().__init__(message)
        self.backend = backend
        self.reason = reason
        self.results = results


class _AuthAbort(Exception):
    def __init__(self, failure: LLMFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class _Tripped(Exception):
    """The circuit breaker opened: the workers stop."""


class _Breaker:
    """Counts consecutive connection and timeout errors with no answer in between (``threshold`` 0: never opens)."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.streak = 0
        self.last = ""

    def error(self, e: LLMError) -> bool:
        """Count an error; True when the breaker opens."""
        if e.kind not in OUTAGE_KINDS:
            return False
        self.streak += 1
        self.last = f"{e.kind}: {e.reason}"
        return 0 < self.threshold <= self.streak

    def answer(self) -> None:
        self.streak = 0


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


def _labelled(result: Result, tag: str) -> Result:
    """A replayed failure labelled with the tag of the request it answers now."""
    if isinstance(result, LLMFailure) and result.tag != tag:
        return result.model_copy(update={"tag": tag})
    return result


class _Stage:
    """One ``arun_requests`` call on the online path: replay, send, settle, stop."""

    def __init__(
        self,
        requests: list[LLMRequest],
        backend: Backend,
        store: ResponseCache | None,
        cfg: LLMConfig,
        policy: RetryPolicy,
        stats: RunStats,
    ) -> None:
        self.requests = requests
        self.be = backend
        self.store = store
        self.cfg = cfg
        self.policy = policy
        self.st = stats
        self.results: list[Result | None] = [None] * len(requests)
        self.pending: dict[str, list[int]] = {}
        """The keys to send, each with the positions of the requests it answers."""
        self.pending_json: dict[str, str] = {}
        self.breaker = _Breaker(cfg.circuit_breaker)
        self.held: dict[str, LLMFailure] = {}
        """Connection/timeout failures not recorded yet: during an outage they become ``not_attempted``."""
        self.rng = random.Random()
        self.limits = limits_for(backend.spec, cfg)
        self.price = _price(backend, cfg)

    # -- 1. replay ---------------------------------------------------------------------------------------
    def replay(self) -> None:
        """Fill the results from the cache (answers, and recorded failures unless ``retry_failures``);
        the rest becomes ``pending``."""
        st, store = self.st, self.store
        st.total = len(self.requests)
        with paused_gc():
            keys = request_keys(self.requests, self.be.spec, self.be.model)
            hits = store.get_many(keys) if store is not None else {}
            self.results = [hits.get(k) for k in keys]
        st.cache_hits = st.done = len(self.results) - self.results.count(None)
        if st.done == len(keys):
            return
        for i, r in enumerate(self.results):
            if r is None:
                self.pending.setdefault(keys[i], []).append(i)
        if store is not None and not self.cfg.retry_failures:
            self._replay_failures(store.failures_for(self.pending))
        reqs = [self.requests[v[0]] for v in self.pending.values()]
        self.pending_json = dict(
            zip(self.pending, request_jsons(reqs, self.be.spec, self.be.model), strict=True)
        )

    def _replay_failures(self, recorded: dict[str, LLMFailure]) -> None:
        for key, failure in recorded.items():
            if failure.kind in ALWAYS_SENT:
                continue
            for i in self.pending.pop(key):
                self.results[i] = _labelled(failure, self.requests[i].tag)
                self.st.failures += 1
                self.st.done += 1

    # -- 2.-4. send ---------------------------------------------------------------------------------------
    async def send(self) -> None:
        """Send every pending key (shared prefixes together) with ``concurrency`` workers."""
        if not self.pending:
            return
        reqs, pending = self.requests, self.pending
        order = sorted(pending, key=lambda k: [(m.role, m.content) for m in reqs[pending[k][0]].messages])
        queue = iter(order)
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(max(1, self.cfg.concurrency), len(order))):
                    tg.create_task(self._worker(queue))
        except BaseExceptionGroup as group:
            raise self._stop_error(group) from None
        self._record_held()

    async def _worker(self, queue: Any) -> None:
        for key in queue:
            req = self.requests[self.pending[key][0]]
            try:
                out = await self._call(req, key)
            except _AuthAbort as abort:
                self._settle(key, req, abort.failure)
                raise
            self._settle(key, req, out)

    async def _call(self, req: LLMRequest, key: str) -> Result:
        """Send one request until it is answered or its failure is final."""
        attempt = 0
        while True:
            attempt += 1
            await self._acquire(req)
            try:
                async with self.limits.semaphore:
                    resp = await self.be.complete(req)
            except LLMError as e:
                if self._final(e, req, key, attempt):
                    return self._failure(key, req, e.kind, e.reason, attempt)
                await asyncio.sleep(self.policy.delay(attempt, e.retry_after, self.rng))
                continue
            except PersonaLabError:
                raise
            except Exception as e:  # noqa: BLE001 - a backend bug is recorded per item, never drops an item
                return self._failure(key, req, "other", f"{type(e).__name__}: {e}", attempt)
            update: dict[str, Any] = {
                "key": key,
                "backend": self.be.spec,
                "model": self.be.model,
                "cached": False,
            }
            if self.price is not None:
                update["cost_usd"] = cost_usd(resp.usage, self.price)
            return resp.model_copy(update=update)

    async def _acquire(self, req: LLMRequest) -> None:
        if self.limits.rpm is not None:
            await self.limits.rpm.acquire(1)
        if self.limits.tpm is not None:
            await self.limits.tpm.acquire(request_input_tokens(req) + req.max_tokens)

    def _final(self, e: LLMError, req: LLMRequest, key: str, attempt: int) -> bool:
        """Whether an error ends the request (otherwise it is retried); stop the stage on auth or an outage."""
        if e.kind == "auth":
            raise _AuthAbort(self._failure(key, req, "auth", e.reason, attempt))
        if self.breaker.error(e):
            raise _Tripped()
        return not (e.transient and attempt <= self.cfg.max_retries)

    def _failure(
        self, key: str, req: LLMRequest, kind: FailureKind, reason: str, attempts: int
    ) -> LLMFailure:
        return LLMFailure(
            key=key,
            kind=kind,
            reason=reason,
            backend=self.be.spec,
            model=self.be.model,
            attempts=attempts,
            tag=req.tag,
        )

    # -- 5. settle ------------------------------------------------------------------------------------------
    def _settle(self, key: str, req: LLMRequest, out: Result) -> None:
        """Commit an answer or record a failure, and fill the results of every request with this key."""
        st, store = self.st, self.store
        if isinstance(out, LLMResponse):
            if store is not None:
                store.put(key, req, out, tag=req.tag, request_json=self.pending_json[key])
            self.breaker.answer()
            self._record_held()  # the backend answers: the failures held meanwhile are the requests' own
            st.calls += 1
            u = out.usage
            st.input_tokens += u.input_tokens
            st.cached_input_tokens += u.cached_input_tokens
            st.output_tokens += u.output_tokens
            st.cost_usd += out.cost_usd
        else:
            if out.kind in OUTAGE_KINDS and self.breaker.threshold > 0:
                self.held[key] = out
            elif store is not None:
                store.record_failure(out)
            st.failures += len(self.pending[key])
        for i in self.pending[key]:
            self.results[i] = out
        st.done += len(self.pending[key])

    def _record_held(self) -> None:
        if self.held and self.store is not None:
            self.store.record_failures(list(self.held.values()))
        self.held.clear()

    # -- stopping ---------------------------------------------------------------------------------------------
    def _stop_error(self, group: BaseExceptionGroup[Any]) -> BaseException:
        """The one error a stopped stage raises: auth, outage, or the user's error (e.g. an unloadable model)."""
        errors = group.exceptions
        auth = next((e for e in errors if isinstance(e, _AuthAbort)), None)
        if auth is not None:
            return PersonaLabError(_auth_message(self.be, auth.failure.reason))
        if any(isinstance(e, _Tripped) for e in errors):
            return self._outage()
        user = next((e for e in errors if isinstance(e, PersonaLabError)), None)
        return user if user is not None else group

    def _outage(self) -> BackendUnavailable:
        """Record every item without an answer as ``not_attempted`` and say what happened."""
        b = self.breaker
        reason = (
            f"not attempted: the stage stopped after {b.streak} consecutive connection or timeout errors "
            f"of {self.be.spec} (last: {b.last})"
        )
        stopped: list[LLMFailure] = []
        for key, positions in self.pending.items():
            if key not in self.held and self.results[positions[0]] is not None:
                continue  # answered, or failed for a reason of its own
            tried = self.held[key].attempts if key in self.held else 0
            failure = self._failure(key, self.requests[positions[0]], "not_attempted", reason, tried)
            stopped.append(failure)
            for i in positions:
                self.results[i] = _labelled(failure, self.requests[i].tag)
        self.held.clear()
        if self.store is not None:
            self.store.record_failures(stopped)
        results = cast(list[Result], self.results)  # every position is filled now
        answered = sum(isinstance(r, LLMResponse) for r in results)
        hint = " (or raise llm.timeout_s)" if b.last.startswith("timeout") else ""
        message = (
            f"backend {self.be.spec!r} looks down: {b.streak} consecutive connection or timeout errors with no "
            f"answer in between (last: {b.last}); stopped the stage with {answered} of {len(results)} requests "
            f"answered and {len(stopped)} recorded as not attempted. Check that the server runs and answers"
            f"{hint}, then rerun the same command: it resumes from the cache and sends only the rest"
        )
        return BackendUnavailable(message, backend=self.be.spec, reason=b.last, results=results)


async def _poll_view(view: View, stats: RunStats) -> None:
    while True:
        view.refresh(stats)
        await asyncio.sleep(0.1)


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
        config: Concurrency, rate limits, retries, circuit breaker, failure replay, prices, batch mode;
            defaults to ``LLMConfig()``.
        progress: ``True`` (marimo bar in a notebook, rich bar in a terminal, plain lines otherwise),
            ``False``, or a mode name (``"rich"``, ``"marimo"``, ``"lines"``, ``"none"``).
        desc: Label of the progress display.
        retry: Backoff policy (tests pass tiny delays).
        stats: Live counters to update (the sync wrapper reads them for its progress display).

    Returns:
        One ``LLMResponse`` (``cached=True`` when replayed) or ``LLMFailure`` (``cached=True`` when replayed)
        per request, in input order.

    Raises:
        BackendUnavailable: when the circuit breaker stops the stage (its ``results`` hold what was done).
        PersonaLabError: on an authentication error (every call would fail), a bad spec or missing key, or a
            damaged cache.
    """
    from persona_lab.config import LLMConfig

    cfg = config or LLMConfig()
    own_backend = isinstance(backend, str)
    be: Backend = get_backend(backend, config=cfg) if isinstance(backend, str) else backend
    own_cache = cache is not None and not isinstance(cache, ResponseCache)
    store = ResponseCache(cache) if not isinstance(cache, ResponseCache | None) else cache
    st = stats if stats is not None else RunStats()
    view = make_view(progress, desc, len(requests)) if stats is None else View()
    poller = asyncio.create_task(_poll_view(view, st)) if type(view) is not View else None
    try:
        if cfg.batch and _provider(be) in ("openai", "anthropic"):
            return await _batch(requests, be, store, cfg, progress)
        stage = _Stage(list(requests), be, store, cfg, retry or RetryPolicy(), st)
        stage.replay()
        await stage.send()
        return cast(list[Result], stage.results)  # every position is filled
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


def _provider(backend: Backend) -> str | None:
    try:
        return parse_spec(backend.spec).provider
    except PersonaLabError:
        return None


async def _batch(
    requests: Sequence[LLMRequest],
    be: Backend,
    store: ResponseCache | None,
    cfg: LLMConfig,
    progress: bool | str,
) -> list[Result]:
    if store is None:
        raise PersonaLabError("batch mode needs a response cache (pass cache=run directory)")
    from persona_lab.llm._batch import run_batch

    show = progress not in (False, "none")
    return await asyncio.to_thread(run_batch, requests, be.spec, cache=store, config=cfg, progress=show)


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
    runs on a background event loop while this thread draws the progress display.

    Returns:
        One ``LLMResponse`` or ``LLMFailure`` per request, in input order.

    Raises:
        BackendUnavailable: when the circuit breaker stops the stage.
        PersonaLabError: as ``arun_requests``.
    """
    stats = RunStats(total=len(requests))
    view = make_view(progress, desc, len(requests))
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
