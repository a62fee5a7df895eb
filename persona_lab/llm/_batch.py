"""Provider batch APIs: OpenAI Batch and Anthropic Message Batches, at half the standard price.

``run_batch`` answers many requests in one provider batch job instead of one call each:

1. Requests already in the response cache are replayed, and so are the failures recorded by an earlier run
   (unless ``LLMConfig.retry_failures``; ``not_attempted`` items are always sent); the rest are pending.
2. Pending keys that belong to a batch submitted earlier and not yet collected (a crashed or interrupted
   run) are not submitted again: that batch is polled instead. The others are submitted as new batches,
   and each batch id is committed with its request keys to the ``batches`` and ``batch_requests`` tables of
   the cache database as soon as the provider accepts it.
3. Every relevant batch is polled (``poll_interval`` seconds apart) until it ends; its results are merged
   into the same ``ResponseCache`` the online runner uses (same request keys), priced at
   ``BATCH_DISCOUNT`` (50 %) of the price table, and every request without an answer is recorded in the
   cache's failures table with its kind and the provider's reason. A batch is marked collected only after
   its results are committed, so a crash while collecting merely collects it again (writes are idempotent).

Provider details:

- OpenAI (https://platform.openai.com/docs/guides/batch): a JSONL file of ``/v1/chat/completions`` bodies,
  ``custom_id`` = request key, uploaded with ``purpose="batch"``; ``completion_window="24h"``; terminal
  statuses ``completed``, ``failed``, ``expired``, ``cancelled``. Answers come from ``output_file_id`` and
  per-request errors from ``error_file_id`` (an expired batch still delivers what it finished). At most
  50,000 requests and 200 MB per file.
- Anthropic (https://docs.anthropic.com/en/docs/build-with-claude/batch-processing): ``custom_id`` =
  request key, polled until ``processing_status == "ended"``; each result is ``succeeded``, ``errored``,
  ``canceled`` or ``expired``. At most 100,000 requests and 256 MB per batch.

Request bodies and answer parsing are those of the online backends (``_openai``/``_anthropic``), so a batch
answer equals an online one, except that the online backends' one repair attempt for malformed structured
output is not made: such answers are recorded as ``unparseable`` failures, which a rerun with
``LLMConfig.retry_failures`` sends again.
The one window where a crash loses a submission is between the provider accepting a batch and the local
commit of its id (milliseconds); those requests are then submitted again on the rerun.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.llm._cache import ResponseCache
from persona_lab.llm._common import StructuredError, choice_schema, classify_status, parse_answer
from persona_lab.llm._cost import BATCH_DISCOUNT, ModelPrice, cost_usd, resolve_price
from persona_lab.llm._keys import request_keys
from persona_lab.llm._spec import BackendSpec, api_key, parse_spec
from persona_lab.llm._types import FailureKind, LLMFailure, LLMRequest, LLMResponse, Usage

if TYPE_CHECKING:
    from persona_lab.config import LLMConfig

BatchProvider = Literal["openai", "anthropic"]

OPENAI_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
"""OpenAI batch statuses after which nothing more happens."""
OPENAI_MAX_REQUESTS = 50_000
OPENAI_MAX_BYTES = 190_000_000
"""Input-file budget, below OpenAI's 200 MB limit."""
ANTHROPIC_MAX_REQUESTS = 100_000
ANTHROPIC_MAX_BYTES = 240_000_000
"""Request budget, below Anthropic's 256 MB limit."""

_ANTHROPIC_ERROR_KINDS: dict[str, FailureKind] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "auth",
    "permission_error": "auth",
    "billing_error": "auth",
    "not_found_error": "invalid_request",
    "request_too_large": "invalid_request",
    "rate_limit_error": "rate_limit",
    "api_error": "server",
    "overloaded_error": "server",
    "timeout_error": "timeout",
}


def batch_jobs(cache: ResponseCache) -> pd.DataFrame:
    """The batches submitted through a cache (``ResponseCache.batch_jobs``)."""
    return cache.batch_jobs()


# ---- provider adapters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """What one batch produced: answers and failures by key, and the batch's final status."""

    status: str
    responses: dict[str, LLMResponse]
    failures: dict[str, LLMFailure]


class _Adapter:
    provider: BatchProvider
    max_requests: int
    max_bytes: int

    def __init__(self, spec: BackendSpec, backend: Any, client: Any, price: ModelPrice | None) -> None:
        self.spec = spec
        self.backend = backend
        self.client = client
        self.price = price

    def line(self, key: str, request: LLMRequest) -> dict[str, Any]:
        raise NotImplementedError

    def submit(self, lines: list[dict[str, Any]]) -> tuple[str, str]:
        raise NotImplementedError

    def poll(self, batch_id: str) -> tuple[str, bool, str]:
        """Return (status, ended, progress text)."""
        raise NotImplementedError

    def collect(self, batch_id: str, items: dict[str, LLMRequest]) -> _Outcome:
        raise NotImplementedError

    # shared helpers
    def response(self, key: str, text: str, parsed: Any, choice: str | None, usage: Usage) -> LLMResponse:
        return LLMResponse(
            text=text,
            parsed=parsed,
            choice=choice,
            usage=usage,
            cost_usd=cost_usd(usage, self.price),
            latency_s=0.0,
            backend=self.spec.spec,
            model=self.spec.model,
            key=key,
        )

    def failure(self, key: str, request: LLMRequest, kind: FailureKind, reason: str) -> LLMFailure:
        return LLMFailure(
            key=key, kind=kind, reason=reason, backend=self.spec.spec, model=self.spec.model, tag=request.tag
        )


class _OpenAIAdapter(_Adapter):
    provider = "openai"
    max_requests = OPENAI_MAX_REQUESTS
    max_bytes = OPENAI_MAX_BYTES
    endpoint = "/v1/chat/completions"

    def line(self, key: str, request: LLMRequest) -> dict[str, Any]:
        body = {"messages": [{"role": m.role, "content": m.content} for m in request.messages]}
        body.update(self.backend.build_params(request))
        return {"custom_id": key, "method": "POST", "url": self.endpoint, "body": body}

    def submit(self, lines: list[dict[str, Any]]) -> tuple[str, str]:
        data = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode("utf-8")
        file = self.client.files.create(file=("batch.jsonl", data, "application/jsonl"), purpose="batch")
        batch = self.client.batches.create(
            input_file_id=file.id,
            endpoint=self.endpoint,
            completion_window="24h",
            metadata={"source": "persona_lab"},
        )
        return batch.id, batch.status

    def poll(self, batch_id: str) -> tuple[str, bool, str]:
        b = self.client.batches.retrieve(batch_id)
        c = b.request_counts
        done = f"{c.completed + c.failed}/{c.total} done, {c.failed} failed" if c is not None else ""
        return b.status, b.status in OPENAI_TERMINAL, done

    def collect(self, batch_id: str, items: dict[str, LLMRequest]) -> _Outcome:
        b = self.client.batches.retrieve(batch_id)
        responses: dict[str, LLMResponse] = {}
        failures: dict[str, LLMFailure] = {}
        for file_id in (b.output_file_id, b.error_file_id):
            for key, row in self._rows(batch_id, file_id) if file_id else ():
                if key not in items:
                    continue
                result = self._read_line(key, items[key], row)
                if isinstance(result, LLMResponse):
                    responses[key] = result
                else:
                    failures[key] = result
        for k in items:
            if k not in responses and k not in failures:
                failures[k] = self._unanswered(b, k, items[k])
        return _Outcome(b.status, responses, failures)

    def _rows(self, batch_id: str, file_id: str) -> Iterable[tuple[Any, dict[str, Any]]]:
        """``(custom_id, row)`` of each line of a result file."""
        text = self.client.files.content(file_id).text
        for n, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise PersonaLabError(
                    f"OpenAI batch {batch_id}: line {n} of file {file_id} is not JSON ({exc.msg}); "
                    "rerun to download it again"
                ) from exc
            yield row.get("custom_id"), row

    def _unanswered(self, b: Any, key: str, request: LLMRequest) -> LLMFailure:
        """The failure of a request the ended batch ``b`` has no line for."""
        reason = f"batch {b.id} ended {b.status} without an answer for this request"
        if b.status == "failed" and b.errors is not None and b.errors.data:
            reason += ": " + "; ".join(
                f"{e.message or e.code}" + (f" (line {e.line})" if e.line else "") for e in b.errors.data[:3]
            )
        kinds: dict[str, FailureKind] = {"expired": "timeout", "failed": "invalid_request"}
        return self.failure(key, request, kinds.get(b.status, "other"), reason)

    def _read_line(self, key: str, request: LLMRequest, row: dict[str, Any]) -> LLMResponse | LLMFailure:
        err = row.get("error")
        resp = row.get("response") or {}
        status = int(resp.get("status_code") or 0)
        body = resp.get("body") or {}
        if err:
            code = str(err.get("code") or "")
            kind: FailureKind = "timeout" if code == "batch_expired" else "other"
            return self.failure(key, request, kind, f"{code}: {err.get('message', '')}".strip(": "))
        if status != 200:
            e = classify_status(status, body, None, f"HTTP {status}")
            return self.failure(key, request, e.kind, e.reason)
        choices = body.get("choices") or []
        if not choices:
            return self.failure(key, request, "server", "the response has no choices")
        first = choices[0]
        msg = first.get("message") or {}
        if msg.get("refusal"):
            return self.failure(key, request, "refusal", str(msg["refusal"]))
        if first.get("finish_reason") == "content_filter":
            return self.failure(key, request, "refusal", "finish_reason content_filter")
        u = body.get("usage") or {}
        usage = Usage(
            input_tokens=int(u.get("prompt_tokens") or 0),
            cached_input_tokens=int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
            output_tokens=int(u.get("completion_tokens") or 0),
        )
        text = msg.get("content") or ""
        parsed = choice = None
        if request.json_schema is not None or request.choices is not None:
            try:
                parsed, choice = parse_answer(text, request.json_schema, request.choices)
            except StructuredError as exc:
                return self.failure(key, request, "unparseable", str(exc))
        return self.response(key, text, parsed, choice, usage)


class _AnthropicAdapter(_Adapter):
    provider = "anthropic"
    max_requests = ANTHROPIC_MAX_REQUESTS
    max_bytes = ANTHROPIC_MAX_BYTES

    def line(self, key: str, request: LLMRequest) -> dict[str, Any]:
        return {"custom_id": key, "params": self.backend.build_params(request)}

    def submit(self, lines: list[dict[str, Any]]) -> tuple[str, str]:
        batch = self.client.messages.batches.create(requests=lines)
        return batch.id, batch.processing_status

    def poll(self, batch_id: str) -> tuple[str, bool, str]:
        b = self.client.messages.batches.retrieve(batch_id)
        c = b.request_counts
        total = c.processing + c.succeeded + c.errored + c.canceled + c.expired
        done = f"{total - c.processing}/{total} done, {c.errored + c.canceled + c.expired} not answered"
        return b.processing_status, b.processing_status == "ended", done

    def collect(self, batch_id: str, items: dict[str, LLMRequest]) -> _Outcome:
        responses: dict[str, LLMResponse] = {}
        failures: dict[str, LLMFailure] = {}
        for entry in self.client.messages.batches.results(batch_id):
            key = entry.custom_id
            if key not in items:
                continue
            result = self._read_result(batch_id, key, items[key], entry.result)
            if isinstance(result, LLMResponse):
                responses[key] = result
            else:
                failures[key] = result
        for k in items:
            if k not in responses and k not in failures:
                failures[k] = self.failure(
                    k, items[k], "other", f"batch {batch_id} returned no result for it"
                )
        return _Outcome("ended", responses, failures)

    def _read_result(
        self, batch_id: str, key: str, request: LLMRequest, result: Any
    ) -> LLMResponse | LLMFailure:
        """The answer or failure of one result: ``succeeded``, ``errored``, ``expired`` or ``canceled``."""
        if result.type == "succeeded":
            return self._read_message(key, request, result.message)
        if result.type == "errored":
            inner = result.error.error
            etype = getattr(inner, "type", "")
            kind = _ANTHROPIC_ERROR_KINDS.get(etype, "other")
            return self.failure(key, request, kind, f"{etype}: {getattr(inner, 'message', '')}")
        if result.type == "expired":
            return self.failure(key, request, "timeout", f"batch {batch_id} expired before this request ran")
        return self.failure(key, request, "other", f"batch {batch_id} was canceled before this request ran")

    def _read_message(self, key: str, request: LLMRequest, msg: Any) -> LLMResponse | LLMFailure:
        from persona_lab.llm._anthropic import usage_of

        if msg.stop_reason == "refusal":
            return self.failure(key, request, "refusal", "stop_reason refusal")
        usage = usage_of(msg.usage)
        schema = request.json_schema if request.choices is None else choice_schema(request.choices)
        if schema is None:
            text = "".join(b.text for b in msg.content if b.type == "text")
            return self.response(key, text, None, None, usage)
        try:
            text, parsed, choice = self.backend._read(msg, request, schema)
        except StructuredError as exc:
            return self.failure(key, request, "unparseable", str(exc))
        return self.response(key, text, parsed, choice, usage)


def _adapter(spec: BackendSpec, cfg: LLMConfig, client: Any) -> _Adapter:
    price = resolve_price(spec.provider, spec.model, self_hosted=spec.self_hosted, prices=cfg.prices)
    if price is not None:
        price = price.scaled(BATCH_DISCOUNT)
    key = api_key(spec) if client is None else "batch-client-supplied"
    if spec.provider == "openai":
        import openai

        from persona_lab.llm._openai import OpenAIBackend

        if client is None:
            client = openai.OpenAI(api_key=key, base_url=spec.base_url, timeout=cfg.timeout_s)
        return _OpenAIAdapter(spec, OpenAIBackend(spec, api_key=key, config=cfg), client, price)
    import anthropic

    from persona_lab.llm._anthropic import AnthropicBackend

    if client is None:
        client = anthropic.Anthropic(api_key=key, base_url=spec.base_url, timeout=cfg.timeout_s)
    return _AnthropicAdapter(spec, AnthropicBackend(spec, api_key=key, config=cfg), client, price)


def _chunks(
    lines: list[tuple[str, LLMRequest, dict[str, Any]]], max_requests: int, max_bytes: int
) -> Iterable[list[tuple[str, LLMRequest, dict[str, Any]]]]:
    chunk: list[tuple[str, LLMRequest, dict[str, Any]]] = []
    size = 0
    for item in lines:
        n = len(json.dumps(item[2], ensure_ascii=False).encode("utf-8")) + 1
        if chunk and (len(chunk) >= max_requests or size + n > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += n
    if chunk:
        yield chunk


# ---- one batch run ----------------------------------------------------------------------------------


@dataclass
class _BatchRun:
    """The state of one ``run_batch`` call: the adapter, the cache, and the answers collected so far."""

    spec: BackendSpec
    adapter: _Adapter
    cache: ResponseCache
    say: Callable[[str], None]
    answers: dict[str, LLMResponse | LLMFailure]

    def resume(self, pending: Sequence[str]) -> dict[str, set[str]]:
        """The batches submitted earlier, not yet collected, that hold pending keys (polled, not resubmitted)."""
        open_batches = self.cache.open_batches(self.spec.spec, pending)
        if open_batches:
            covered = set().union(*open_batches.values())
            self.say(
                f"{self.spec.spec}: resuming {len(open_batches)} batch(es) holding {len(covered)} request(s)"
            )
        return open_batches

    def submit(self, items: Sequence[tuple[str, LLMRequest]]) -> dict[str, set[str]]:
        """Submit ``(key, request)`` items in batches within the provider's limits; each batch is committed
        to the cache as soon as the provider accepts it."""
        lines = [(k, r, self.adapter.line(k, r)) for k, r in items]
        submitted: dict[str, set[str]] = {}
        for chunk in _chunks(lines, self.adapter.max_requests, self.adapter.max_bytes):
            try:
                batch_id, status = self.adapter.submit([line for _, _, line in chunk])
            except PersonaLabError:
                raise
            except Exception as exc:
                raise PersonaLabError(
                    f"{self.spec.spec}: submitting a batch of {len(chunk)} requests failed "
                    f"({type(exc).__name__}: {exc}); batches already submitted are recorded in the cache, "
                    "rerun to resume"
                ) from exc
            self.cache.record_batch(
                batch_id,
                provider=self.adapter.provider,
                backend=self.spec.spec,
                model=self.spec.model,
                status=status,
                items=[(k, r) for k, r, _ in chunk],
            )
            submitted[batch_id] = {k for k, _, _ in chunk}
            self.say(f"{self.spec.spec}: submitted batch {batch_id} with {len(chunk)} request(s)")
        return submitted

    def wait(self, batch_ids: Iterable[str], poll_interval: float, sleep: Callable[[float], None]) -> None:
        """Poll every batch until it ends and collect each as it does."""
        waiting = list(batch_ids)
        last_seen: dict[str, str] = {}
        while waiting:
            waiting = [b for b in waiting if not self._poll(b, last_seen)]
            if waiting:
                sleep(poll_interval)

    def _poll(self, batch_id: str, last_seen: dict[str, str]) -> bool:
        """Poll one batch; collect it if it ended. Returns whether it ended."""
        try:
            status, ended, done = self.adapter.poll(batch_id)
            if not ended:
                if last_seen.get(batch_id) != f"{status} {done}":
                    last_seen[batch_id] = f"{status} {done}"
                    self.say(f"{self.spec.spec}: batch {batch_id} {status} {done}".rstrip())
                    self.cache.set_batch_status(batch_id, status)
                return False
            items = self.cache.batch_requests(batch_id)
            outcome = self.adapter.collect(batch_id, items)
        except PersonaLabError:
            raise
        except Exception as exc:
            raise PersonaLabError(
                f"{self.spec.spec}: polling batch {batch_id} failed ({type(exc).__name__}: {exc}); the batch "
                "is recorded in the cache, rerun to resume it without submitting again"
            ) from exc
        self._merge(batch_id, items, outcome)
        return True

    def _merge(self, batch_id: str, items: dict[str, LLMRequest], outcome: _Outcome) -> None:
        """Commit a batch's answers and failures, then mark it collected (a crash before that only
        collects it again: the writes are idempotent)."""
        self.cache.put_many([(k, items[k], r, items[k].tag) for k, r in outcome.responses.items()])
        for f in outcome.failures.values():
            self.cache.record_failure(f)
        self.cache.set_batch_status(batch_id, outcome.status, collected=True)
        for results in (outcome.responses, outcome.failures):
            for k, result in results.items():
                self.answers.setdefault(k, result)  # an answer replayed from the cache stays the answer
        self.say(
            f"{self.spec.spec}: batch {batch_id} {outcome.status}: {len(outcome.responses)} answered, "
            f"{len(outcome.failures)} failed"
        )


def _batch_spec(backend_spec: str) -> BackendSpec:
    spec = parse_spec(backend_spec)
    if spec.provider == "local":
        raise PersonaLabError(
            f"backend {backend_spec!r} has no batch API; set llm.batch = false, or use an openai: or anthropic: backend"
        )
    return spec


def _printer(progress: bool | str) -> Callable[[str], None]:
    if progress in (False, "none"):
        return lambda s: None
    return lambda s: print(s, file=sys.stderr, flush=True)


# ---- the public entry point -------------------------------------------------------------------------


def run_batch(
    requests: Sequence[LLMRequest],
    backend_spec: str,
    *,
    cache: ResponseCache,
    config: LLMConfig | None = None,
    poll_interval: float = 30.0,
    progress: bool | str = True,
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[LLMResponse | LLMFailure]:
    """Answer ``requests`` through the provider's batch API, resuming batches submitted earlier.

    Args:
        requests: The requests, in the caller's order (duplicates are answered once).
        backend_spec: ``openai:MODEL`` or ``anthropic:MODEL`` (``@url`` for a compatible server).
        cache: The run's response cache; answers are merged into it, failures recorded in it, and the
            submitted batch ids kept in its ``batches`` table.
        config: Prices (``prices``), timeouts and ``retry_failures``; defaults to ``LLMConfig()``.
        poll_interval: Seconds between status polls.
        progress: Print one line per batch status change to stderr (``False`` or ``"none"``: silent).
        client: A synchronous SDK client (``openai.OpenAI`` or ``anthropic.Anthropic``); by default one is
            built from the spec with the API key from the environment.
        sleep: The function that waits between polls (tests pass a no-op).

    Returns:
        One item per request, in order: an ``LLMResponse`` (``cached=True`` if it was already in the cache),
        the ``LLMFailure`` recorded for it now, or the one recorded by an earlier run (``cached=True``; sent
        again only with ``config.retry_failures``). Costs are at 50 % of the price table.

    Raises:
        PersonaLabError: for a backend without a batch API (``local``), a missing API key, or when polling or
            downloading fails; the submitted batches are recorded, so rerunning resumes them.
    """
    from persona_lab.config import LLMConfig

    cfg = config or LLMConfig()
    spec = _batch_spec(backend_spec)
    run = _BatchRun(spec, _adapter(spec, cfg, client), cache, _printer(progress), {})
    keys = request_keys(requests, spec.spec, spec.model)
    by_key: dict[str, LLMRequest] = {}
    for k, r in zip(keys, requests, strict=True):
        by_key.setdefault(k, r)
    run.answers.update(cache.get_many(by_key))
    if not cfg.retry_failures:
        recorded = cache.failures_for(k for k in by_key if k not in run.answers)
        run.answers.update({k: f for k, f in recorded.items() if f.kind != "not_attempted"})
    pending = [k for k in by_key if k not in run.answers]

    open_batches = run.resume(pending)
    covered = set().union(*open_batches.values()) if open_batches else set()
    open_batches.update(run.submit([(k, by_key[k]) for k in pending if k not in covered]))
    run.wait(open_batches, poll_interval, sleep)
    # every pending key was in a batch collected above, which answered or failed it
    return [_labelled(run.answers[k], r.tag) for k, r in zip(keys, requests, strict=True)]


def _labelled(result: LLMResponse | LLMFailure, tag: str) -> LLMResponse | LLMFailure:
    """A failure carries the tag of the request it answers (a duplicate's own tag)."""
    if isinstance(result, LLMFailure) and result.tag != tag:
        return result.model_copy(update={"tag": tag})
    return result
