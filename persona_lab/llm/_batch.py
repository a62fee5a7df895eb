"""Provider batch APIs: OpenAI Batch and Anthropic Message Batches, at half the standard price.

``run_batch`` answers many requests in one provider batch job instead of one call each:

1. Requests already in the response cache are replayed; the rest are the pending keys.
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
output is not made: such answers are recorded as ``unparseable`` failures, which a rerun retries.
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
from persona_lab.llm._cache import ResponseCache, request_key
from persona_lab.llm._common import StructuredError, choice_schema, classify_status, parse_answer
from persona_lab.llm._cost import BATCH_DISCOUNT, ModelPrice, cost_usd, resolve_price
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    n_requests INTEGER NOT NULL,
    submitted_at REAL NOT NULL,
    collected_at REAL
);
CREATE TABLE IF NOT EXISTS batch_requests (
    batch_id TEXT NOT NULL,
    key TEXT NOT NULL,
    tag TEXT NOT NULL,
    request TEXT NOT NULL,
    PRIMARY KEY (batch_id, key)
);
CREATE INDEX IF NOT EXISTS batch_requests_by_key ON batch_requests (key);
"""

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


# ---- the batches tables in the cache database ---------------------------------------------------------


def _ensure_tables(cache: ResponseCache) -> None:
    with cache.lock:
        cache.connection.executescript(_SCHEMA)


def _record_batch(
    cache: ResponseCache,
    batch_id: str,
    provider: str,
    spec: BackendSpec,
    status: str,
    items: Sequence[tuple[str, LLMRequest]],
) -> None:
    """Commit a submitted batch and its request keys in one transaction."""
    with cache.lock:
        conn = cache.connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT OR REPLACE INTO batches (batch_id, provider, backend, model, status, n_requests, "
                "submitted_at, collected_at) VALUES (?,?,?,?,?,?,?,NULL)",
                (batch_id, provider, spec.spec, spec.model, status, len(items), time.time()),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO batch_requests (batch_id, key, tag, request) VALUES (?,?,?,?)",
                [(batch_id, key, req.tag, req.model_dump_json()) for key, req in items],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _open_batches_for(cache: ResponseCache, spec: BackendSpec, keys: Sequence[str]) -> dict[str, set[str]]:
    """Uncollected batches of this backend that hold any of ``keys``: ``{batch_id: keys it holds}``."""
    out: dict[str, set[str]] = {}
    with cache.lock:
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = cache.connection.execute(
                "SELECT r.batch_id, r.key FROM batch_requests r JOIN batches b ON b.batch_id = r.batch_id "
                f"WHERE b.collected_at IS NULL AND b.backend = ? AND r.key IN ({marks}) "
                "ORDER BY b.submitted_at",
                [spec.spec, *chunk],
            ).fetchall()
            for batch_id, key in rows:
                out.setdefault(batch_id, set()).add(key)
    return out


def _batch_items(cache: ResponseCache, batch_id: str) -> dict[str, LLMRequest]:
    """The requests a batch was submitted with, by key (tag restored)."""
    with cache.lock:
        rows = cache.connection.execute(
            "SELECT key, tag, request FROM batch_requests WHERE batch_id = ?", (batch_id,)
        ).fetchall()
    return {
        key: LLMRequest.model_validate_json(req).model_copy(update={"tag": tag}) for key, tag, req in rows
    }


def _set_status(cache: ResponseCache, batch_id: str, status: str, *, collected: bool = False) -> None:
    with cache.lock:
        if collected:
            cache.connection.execute(
                "UPDATE batches SET status = ?, collected_at = ? WHERE batch_id = ?",
                (status, time.time(), batch_id),
            )
        else:
            cache.connection.execute("UPDATE batches SET status = ? WHERE batch_id = ?", (status, batch_id))


def batch_jobs(cache: ResponseCache) -> pd.DataFrame:
    """The batches submitted through a cache: batch_id, provider, backend, model, status, n_requests,
    submitted_at and collected_at (UTC; ``NaT`` while not yet collected)."""
    _ensure_tables(cache)
    with cache.lock:
        df = pd.read_sql_query(
            "SELECT batch_id, provider, backend, model, status, n_requests, submitted_at, collected_at "
            "FROM batches ORDER BY submitted_at",
            cache.connection,
        )
    for col in ("submitted_at", "collected_at"):
        df[col] = pd.to_datetime(df[col], unit="s", utc=True)
    return df


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
            if not file_id:
                continue
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
                key = row.get("custom_id")
                if key not in items:
                    continue
                request = items[key]
                result = self._read_line(key, request, row)
                if isinstance(result, LLMResponse):
                    responses[key] = result
                else:
                    failures[key] = result
        missing = [k for k in items if k not in responses and k not in failures]
        if missing:
            reason = f"batch {batch_id} ended {b.status} without an answer for this request"
            if b.status == "failed" and b.errors is not None and b.errors.data:
                reason += ": " + "; ".join(
                    f"{e.message or e.code}" + (f" (line {e.line})" if e.line else "")
                    for e in b.errors.data[:3]
                )
            kind: FailureKind = "timeout" if b.status == "expired" else "other"
            if b.status == "failed":
                kind = "invalid_request"
            for k in missing:
                failures[k] = self.failure(k, items[k], kind, reason)
        return _Outcome(b.status, responses, failures)

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
        from persona_lab.llm._anthropic import usage_of

        responses: dict[str, LLMResponse] = {}
        failures: dict[str, LLMFailure] = {}
        for entry in self.client.messages.batches.results(batch_id):
            key = entry.custom_id
            if key not in items:
                continue
            request = items[key]
            result = entry.result
            if result.type == "succeeded":
                msg = result.message
                if msg.stop_reason == "refusal":
                    failures[key] = self.failure(key, request, "refusal", "stop_reason refusal")
                    continue
                usage = usage_of(msg.usage)
                schema = request.json_schema if request.choices is None else choice_schema(request.choices)
                if schema is None:
                    text = "".join(b.text for b in msg.content if b.type == "text")
                    responses[key] = self.response(key, text, None, None, usage)
                    continue
                try:
                    text, parsed, choice = self.backend._read(msg, request, schema)
                except StructuredError as exc:
                    failures[key] = self.failure(key, request, "unparseable", str(exc))
                    continue
                responses[key] = self.response(key, text, parsed, choice, usage)
            elif result.type == "errored":
                inner = result.error.error
                etype = getattr(inner, "type", "")
                kind = _ANTHROPIC_ERROR_KINDS.get(etype, "other")
                failures[key] = self.failure(key, request, kind, f"{etype}: {getattr(inner, 'message', '')}")
            elif result.type == "expired":
                failures[key] = self.failure(
                    key, request, "timeout", f"batch {batch_id} expired before this request ran"
                )
            else:  # canceled
                failures[key] = self.failure(
                    key, request, "other", f"batch {batch_id} was canceled before this request ran"
                )
        for k in items:
            if k not in responses and k not in failures:
                failures[k] = self.failure(
                    k, items[k], "other", f"batch {batch_id} returned no result for it"
                )
        return _Outcome("ended", responses, failures)


def _adapter(spec: BackendSpec, cfg: LLMConfig, client: Any) -> _Adapter:
    price = resolve_price(spec.provider, spec.model, self_hosted=spec.self_hosted, prices=cfg.prices)
    if price is not None:
        price = price.scaled(BATCH_DISCOUNT)
    key = api_key(spec) if client is None else "batch-client-supplied"
    if spec.provider == "openai":
        import openai

        from persona_lab.llm._openai import OpenAIBackend

        backend = OpenAIBackend(spec, api_key=key, config=cfg)
        if client is None:
            client = openai.OpenAI(api_key=key, base_url=spec.base_url, timeout=cfg.timeout_s)
        return _OpenAIAdapter(spec, backend, client, price)
    import anthropic

    from persona_lab.llm._anthropic import AnthropicBackend

    backend = AnthropicBackend(spec, api_key=key, config=cfg)
    if client is None:
        client = anthropic.Anthropic(api_key=key, base_url=spec.base_url, timeout=cfg.timeout_s)
    return _AnthropicAdapter(spec, backend, client, price)


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
        config: Prices (``prices``) and timeouts; defaults to ``LLMConfig()``.
        poll_interval: Seconds between status polls.
        progress: Print one line per batch status change to stderr (``False`` or ``"none"``: silent).
        client: A synchronous SDK client (``openai.OpenAI`` or ``anthropic.Anthropic``); by default one is
            built from the spec with the API key from the environment.
        sleep: The function that waits between polls (tests pass a no-op).

    Returns:
        One item per request, in order: an ``LLMResponse`` (``cached=True`` if it was already in the cache)
        or the ``LLMFailure`` recorded for it. Costs are at 50 % of the price table.

    Raises:
        PersonaLabError: for a backend without a batch API (``local``), a missing API key, or when polling or
            downloading fails; the submitted batches are recorded, so rerunning resumes them.
    """
    from persona_lab.config import LLMConfig

    cfg = config or LLMConfig()
    spec = parse_spec(backend_spec)
    if spec.provider == "local":
        raise PersonaLabError(
            f"backend {backend_spec!r} has no batch API; set llm.batch = false, or use an openai: or anthropic: backend"
        )
    _ensure_tables(cache)
    adapter = _adapter(spec, cfg, client)
    say: Callable[[str], None] = (
        (lambda s: print(s, file=sys.stderr, flush=True))
        if progress not in (False, "none")
        else (lambda s: None)
    )

    keys = [request_key(r, spec.spec, spec.model) for r in requests]
    by_key: dict[str, LLMRequest] = {}
    for k, r in zip(keys, requests, strict=True):
        by_key.setdefault(k, r)
    cached = cache.get_many(by_key)
    pending = [k for k in by_key if k not in cached]

    open_batches = _open_batches_for(cache, spec, pending)
    covered = set().union(*open_batches.values()) if open_batches else set()
    if open_batches:
        say(f"{spec.spec}: resuming {len(open_batches)} batch(es) holding {len(covered)} request(s)")
    to_submit = [(k, by_key[k], adapter.line(k, by_key[k])) for k in pending if k not in covered]
    for chunk in _chunks(to_submit, adapter.max_requests, adapter.max_bytes):
        try:
            batch_id, status = adapter.submit([line for _, _, line in chunk])
        except PersonaLabError:
            raise
        except Exception as exc:
            raise PersonaLabError(
                f"{spec.spec}: submitting a batch of {len(chunk)} requests failed ({type(exc).__name__}: {exc}); "
                "batches already submitted are recorded in the cache, rerun to resume"
            ) from exc
        _record_batch(cache, batch_id, adapter.provider, spec, status, [(k, r) for k, r, _ in chunk])
        open_batches[batch_id] = {k for k, _, _ in chunk}
        say(f"{spec.spec}: submitted batch {batch_id} with {len(chunk)} request(s)")

    fresh: dict[str, LLMResponse] = {}
    failed: dict[str, LLMFailure] = {}
    last_seen: dict[str, str] = {}
    waiting = list(open_batches)
    while waiting:
        still: list[str] = []
        for batch_id in waiting:
            try:
                status, ended, done = adapter.poll(batch_id)
                if not ended:
                    if last_seen.get(batch_id) != f"{status} {done}":
                        say(f"{spec.spec}: batch {batch_id} {status} {done}".rstrip())
                        last_seen[batch_id] = f"{status} {done}"
                        _set_status(cache, batch_id, status)
                    still.append(batch_id)
                    continue
                items = _batch_items(cache, batch_id)
                outcome = adapter.collect(batch_id, items)
            except PersonaLabError:
                raise
            except Exception as exc:
                raise PersonaLabError(
                    f"{spec.spec}: polling batch {batch_id} failed ({type(exc).__name__}: {exc}); the batch is "
                    "recorded in the cache, rerun to resume it without submitting again"
                ) from exc
            cache.put_many([(k, items[k], r, items[k].tag) for k, r in outcome.responses.items()])
            for f in outcome.failures.values():
                cache.record_failure(f)
            _set_status(cache, batch_id, outcome.status, collected=True)
            fresh.update(outcome.responses)
            failed.update(outcome.failures)
            say(
                f"{spec.spec}: batch {batch_id} {outcome.status}: {len(outcome.responses)} answered, "
                f"{len(outcome.failures)} failed"
            )
        waiting = still
        if waiting:
            sleep(poll_interval)

    out: list[LLMResponse | LLMFailure] = []
    for k, r in zip(keys, requests, strict=True):
        if k in cached:
            out.append(cached[k])
        elif k in fresh:
            out.append(fresh[k])
        else:  # every pending key was in a batch collected above, which answered or failed it
            out.append(failed[k].model_copy(update={"tag": r.tag}))
    return out
