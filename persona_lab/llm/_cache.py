"""The persistent response cache: resume, replay and provenance for every LLM call of a run.

One SQLite file per run directory (``runs/<name>/llm_cache.sqlite``) in WAL mode. Each completed response is
committed on its own as soon as it arrives, so a process killed at any instant (``kill -9``) loses no completed
call, and the primary key on the request key means a rerun never writes a duplicate. ``synchronous=NORMAL`` in
WAL mode is durable against a crash of the process (the committed WAL frames are in the OS page cache); only a
power loss of the machine can drop the last commits, which a rerun then simply recomputes.

Tables:

- ``responses``: one row per request key: the answer (text, parsed JSON, choice), token usage, cost, latency,
  backend, model, when it was created, and the request itself (messages and parameters) as JSON; this is
  the provenance record of the run.
- ``failures``: the calls that still failed after retries (key, kind, reason, attempts, backend, model, time).
  A later success of the same key removes its failure row.
- ``batches`` and ``batch_requests`` (created on first use): the provider batch jobs submitted through this
  cache and the request keys of each, so an interrupted batch run resumes without submitting again.
- ``meta``: the cache format version.

A damaged file (garbage in its header or in any data page) is reported by every operation as the same
``PersonaLabError`` ("not a readable response cache ...; move the file away"); the cache never tries to repair
or rewrite it. API keys never reach the cache: requests hold only messages and sampling parameters, backend
specs hold no secrets, and failure reasons are redacted by the backends before they are recorded.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, get_args

import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.llm._keys import (  # noqa: F401 - re-exported: the cache's key functions
    KEY_VERSION,
    key_of_json,
    request_json,
    request_key,
    request_payload,
)
from persona_lab.llm._sqlite import cache_error, paused_gc
from persona_lab.llm._types import FailureKind, LLMFailure, LLMRequest, LLMResponse, Usage

CACHE_FILENAME = "llm_cache.sqlite"
"""File name of the response cache inside a run directory."""
CACHE_FORMAT = "1"
"""Stored in the ``meta`` table; a cache written by another format is refused with a clear message."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    parsed TEXT,
    choice TEXT,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cache_write_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_s REAL NOT NULL,
    created_at REAL NOT NULL,
    tag TEXT NOT NULL,
    request TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    time REAL NOT NULL,
    tag TEXT NOT NULL
);
"""

_BATCH_SCHEMA = """
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

_RESPONSE_COLUMNS = (
    "key, backend, model, text, parsed, choice, input_tokens, cached_input_tokens, cache_write_input_tokens, "
    "output_tokens, cost_usd, latency_s, created_at, tag"
)
_ANSWER_COLUMNS = _RESPONSE_COLUMNS.removesuffix(", created_at, tag")
"""The columns a cached ``LLMResponse`` is built from (``_add_responses``)."""
_FAILURE_COLUMNS = "key, kind, reason, attempts, backend, model, time, tag"
_FAILURE_KINDS = frozenset(get_args(FailureKind))
_BATCH_COLUMNS = "batch_id, provider, backend, model, status, n_requests, submitted_at, collected_at"
_CHUNK = 500  # keys per "IN (...)" lookup, below SQLite's default limit on host parameters
_SCAN_SHARE = 0.5
"""``get_many`` reads the whole table in one pass instead of looking keys up when it wants at least this
share of its rows (a sequential scan reads rows about twice as fast as index lookups)."""
_PAGE_CACHE_KIB = 65536
"""SQLite page cache of the connection (64 MiB): holds the key index of a 640,000-answer cache."""

# -- building responses from rows -----------------------------------------------------------------------
_RESPONSE_FIELDS_SET = set(LLMResponse.model_fields)
_USAGE_FIELDS_SET = set(Usage.model_fields)


def _add_responses(
    rows: Iterable[tuple[Any, ...]], wanted: dict[str, str], out: dict[str, LLMResponse]
) -> None:
    """Add the cached response (``cached=True``) of each ``responses`` row whose key is ``wanted`` to ``out``.

    The rows were validated when they were written, so the models are built as ``model_construct`` builds
    them, without validating again and without its per-field work (1.6 us per answer here against 2.5 us
    for ``model_validate`` and 4.7 us for ``model_construct``). Every field is given, so each model's ``model_fields_set`` is the set of
    all its fields, one set shared by all of them (assigning a field adds a name it already holds) instead of
    two sets of about 950 bytes per answer. The responses keep the caller's key strings (``wanted`` maps each
    key to itself) and one string per distinct backend and model name.
    """
    new, put = object.__new__, object.__setattr__
    loads = json.loads
    names: dict[str, str] = {}
    for key, backend, model, text, parsed, choice, inp, cached, written, output, cost, latency in rows:
        key = wanted.get(key)
        if key is None:
            continue
        usage = new(Usage)
        put(
            usage,
            "__dict__",
            {
                "input_tokens": inp,
                "cached_input_tokens": cached,
                "cache_write_input_tokens": written,
                "output_tokens": output,
            },
        )
        put(usage, "__pydantic_fields_set__", _USAGE_FIELDS_SET)
        put(usage, "__pydantic_extra__", None)
        put(usage, "__pydantic_private__", None)
        response = new(LLMResponse)
        put(
            response,
            "__dict__",
            {
                "text": text,
                "parsed": None if parsed is None else loads(parsed),
                "choice": choice,
                "usage": usage,
                "cost_usd": cost,
                "latency_s": latency,
                "backend": names.setdefault(backend, backend),
                "model": names.setdefault(model, model),
                "cached": True,
                "key": key,
            },
        )
        put(response, "__pydantic_fields_set__", _RESPONSE_FIELDS_SET)
        put(response, "__pydantic_extra__", None)
        put(response, "__pydantic_private__", None)
        out[key] = response


def _response_row(
    key: str, req: LLMRequest, resp: LLMResponse, tag: str, now: float, blob: str | None = None
) -> tuple[Any, ...]:
    u = resp.usage
    return (
        key,
        resp.backend,
        resp.model,
        resp.text,
        json.dumps(resp.parsed, ensure_ascii=False) if resp.parsed is not None else None,
        resp.choice,
        u.input_tokens,
        u.cached_input_tokens,
        u.cache_write_input_tokens,
        u.output_tokens,
        float(resp.cost_usd),
        float(resp.latency_s),
        now,
        tag,
        blob if blob is not None else request_json(req, resp.backend, resp.model),
    )


def _request_from_json(blob: str) -> LLMRequest:
    data = json.loads(blob)
    return LLMRequest(
        messages=tuple({"role": r, "content": c} for r, c in data["messages"]),  # type: ignore[misc]
        temperature=data["temperature"],
        max_tokens=data["max_tokens"],
        seed=data["seed"],
        json_schema=data["json_schema"],
        choices=tuple(data["choices"]) if data["choices"] is not None else None,
        sample_index=data["sample_index"],
    )


class ResponseCache:
    """A persistent, crash-safe cache of LLM responses and failures in one SQLite file.

    Args:
        path: The SQLite file, or a run directory (then ``<dir>/llm_cache.sqlite``). Parent directories are
            created. Use ``":memory:"`` for a throwaway cache.

    Raises:
        PersonaLabError: if the file is not a SQLite database, was written by another cache format, or (from
            any method) turns out to be damaged.

    The object is safe to share between threads (one connection behind a lock). Other tables may be added
    to the same database by other modules through :attr:`connection` (under :attr:`lock`).
    """

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        memory = str(path) == ":memory:"
        if not memory and (p.is_dir() or p.suffix == ""):
            p = p / CACHE_FILENAME
        self.path = p
        self.lock = threading.RLock()
        self._batch_tables = False
        if not memory:
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(
                ":memory:" if memory else str(p),
                check_same_thread=False,
                isolation_level=None,  # autocommit; explicit BEGIN/COMMIT where several statements go together
                timeout=30.0,
            )
        except sqlite3.Error as exc:
            raise (cache_error(p, exc) or exc) from exc
        try:
            self._open()
        except BaseException:
            self.connection.close()
            raise

    def _open(self) -> None:
        """Set the connection up, create missing tables and check the format (nothing else is written)."""
        p = self.path
        with self._guard():
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.execute(f"PRAGMA cache_size=-{_PAGE_CACHE_KIB}")
            self.connection.executescript(_SCHEMA)
            row = self.connection.execute("SELECT value FROM meta WHERE name='format'").fetchone()
            if row is None:
                self.connection.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (CACHE_FORMAT,))
            elif row[0] != CACHE_FORMAT:
                raise PersonaLabError(
                    f"{p}: response cache format {row[0]}, this persona_lab reads format {CACHE_FORMAT}; "
                    "move the file away to start a fresh cache"
                )
            # whether a success may have a failure row to clear (set again by record_failure)
            self._has_failures = (
                self.connection.execute("SELECT EXISTS(SELECT 1 FROM failures)").fetchone()[0] == 1
            )

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and turn any SQLite error into the user's error (see ``cache_error``)."""
        with self.lock:
            try:
                yield self.connection
            except sqlite3.Error as exc:
                error = cache_error(self.path, exc)
                if error is None:
                    raise
                raise error from exc

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._guard() as conn:
            return conn.execute(sql, params).fetchall()

    # -- lifecycle ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the main file)."""
        with self._guard() as conn:
            conn.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    # -- responses ---------------------------------------------------------------------------------------
    def get(self, key: str) -> LLMResponse | None:
        """Return the cached response for ``key`` (``cached=True``), or ``None``."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, LLMResponse]:
        """Return the cached responses among ``keys`` as ``{key: response}`` (each with ``cached=True``).

        Keys are looked up in sorted order, in chunks, or, when they are a large share of the table, read in
        one sequential pass over it; either way the garbage collector is paused (``paused_gc``).
        """
        wanted = {k: k for k in keys}  # each key to itself: the responses keep the caller's key strings
        out: dict[str, LLMResponse] = {}
        if not wanted:
            return out
        columns = f"SELECT {_ANSWER_COLUMNS} FROM responses"
        with paused_gc(), self._guard() as conn:
            top = conn.execute("SELECT MAX(rowid) FROM responses").fetchone()[0]
            if top is None:
                return out
            if len(wanted) >= _SCAN_SHARE * top:
                _add_responses(conn.execute(columns), wanted, out)
                return out
            ordered = sorted(wanted)  # neighbouring keys share index pages
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                sql = f"{columns} WHERE key IN ({','.join('?' * len(chunk))})"
                _add_responses(conn.execute(sql, chunk).fetchall(), wanted, out)
        return out

    def __contains__(self, key: object) -> bool:
        return bool(self._rows("SELECT 1 FROM responses WHERE key=?", (key,)))

    def __len__(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM responses")[0][0])

    def put(
        self,
        key: str,
        request: LLMRequest,
        response: LLMResponse,
        *,
        tag: str = "",
        request_json: str | None = None,
    ) -> bool:
        """Commit one response (and clear a failure recorded for the same key) in one transaction.

        ``request_json`` is the request's canonical JSON if the caller already has it (saves re-encoding).

        Returns:
            ``True`` if the row was written, ``False`` if the key was already cached (never a duplicate).
        """
        return self._put_rows([_response_row(key, request, response, tag, time.time(), request_json)]) == 1

    def put_many(self, items: Sequence[tuple[str, LLMRequest, LLMResponse, str]]) -> int:
        """Commit several ``(key, request, response, tag)`` rows in one transaction; returns rows written."""
        now = time.time()
        return self._put_rows([_response_row(key, req, resp, tag, now) for key, req, resp, tag in items])

    def _put_rows(self, rows: list[tuple[Any, ...]]) -> int:
        insert = (
            f"INSERT INTO responses ({_RESPONSE_COLUMNS}, request) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO NOTHING"
        )
        with self._guard() as conn:
            before = conn.total_changes
            if len(rows) == 1 and not self._has_failures:
                # the runner's hot path: one statement in autocommit mode is its own transaction. No failure
                # row can exist for the key unless one was in the file when it was opened or was recorded
                # through this object since (both set ``_has_failures``); then the general path clears it.
                conn.execute(insert, rows[0])
                return conn.total_changes - before
            with self._transaction(conn):
                conn.executemany(insert, rows)
                written = conn.total_changes - before
                conn.executemany("DELETE FROM failures WHERE key=?", [(r[0],) for r in rows])
        return written

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def keys(self) -> list[str]:
        """All cached response keys."""
        return [r[0] for r in self._rows("SELECT key FROM responses")]

    def request(self, key: str) -> LLMRequest | None:
        """Rebuild the request stored with a cached response (its provenance), or ``None``."""
        rows = self._rows("SELECT request FROM responses WHERE key=?", (key,))
        return _request_from_json(rows[0][0]) if rows else None

    # -- failures ----------------------------------------------------------------------------------------
    def record_failure(self, failure: LLMFailure) -> None:
        """Record (or update) the failure of one request key."""
        self.record_failures([failure])

    def record_failures(self, failures: Sequence[LLMFailure]) -> None:
        """Record (or update) the failures of several request keys in one transaction."""
        if not failures:
            return
        now = time.time()
        rows = [(f.key, f.kind, f.reason, f.attempts, f.backend, f.model, now, f.tag) for f in failures]
        upsert = (
            f"INSERT INTO failures ({_FAILURE_COLUMNS}) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET kind=excluded.kind, "
            "reason=excluded.reason, attempts=excluded.attempts, backend=excluded.backend, "
            "model=excluded.model, time=excluded.time, tag=excluded.tag"
        )
        with self._guard() as conn:
            self._has_failures = True
            if len(rows) == 1:
                conn.execute(upsert, rows[0])
                return
            with self._transaction(conn):
                conn.executemany(upsert, rows)

    def failures_for(self, keys: Iterable[str]) -> dict[str, LLMFailure]:
        """The failures recorded for any of ``keys``, as ``{key: failure}`` (each with ``cached=True``)."""
        if not self._has_failures:
            return {}
        wanted = sorted(set(keys))
        out: dict[str, LLMFailure] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_FAILURE_COLUMNS} FROM failures WHERE key IN ({marks})"
            for key, kind, reason, attempts, backend, model, _, tag in self._rows(sql, chunk):
                known = kind in _FAILURE_KINDS  # a kind written by another version reads as "other"
                out[key] = LLMFailure(
                    key=key,
                    kind=kind if known else "other",
                    reason=reason if known else f"{kind}: {reason}",
                    attempts=attempts,
                    backend=backend,
                    model=model,
                    tag=tag,
                    cached=True,
                )
        return out

    def failures(self) -> pd.DataFrame:
        """The failures table: key, kind, reason, attempts, backend, model, time (UTC), tag."""
        df = self._frame(f"SELECT {_FAILURE_COLUMNS} FROM failures ORDER BY time", _FAILURE_COLUMNS)
        df["time"] = pd.to_datetime(df["time"], unit="s", utc=True)
        return df

    def _frame(self, sql: str, columns: str) -> pd.DataFrame:
        return pd.DataFrame.from_records(self._rows(sql), columns=[c.strip() for c in columns.split(",")])

    # -- provenance --------------------------------------------------------------------------------------
    def responses(self) -> pd.DataFrame:
        """The provenance table: one row per cached response, without the request JSON."""
        df = self._frame(f"SELECT {_RESPONSE_COLUMNS} FROM responses ORDER BY created_at", _RESPONSE_COLUMNS)
        df["created_at"] = pd.to_datetime(df["created_at"], unit="s", utc=True)
        return df

    def totals(self, since: float | None = None) -> dict[str, float]:
        """Sums over the cache: responses, failures, input/cached/output tokens and cost in USD.

        With ``since`` (a ``time.time()`` value), only the responses created and failures recorded from then on:
        the calls one stage made.
        """
        t = -1.0 if since is None else since
        r = self._rows(
            "SELECT COUNT(*), COALESCE(SUM(input_tokens),0), COALESCE(SUM(cached_input_tokens),0), "
            "COALESCE(SUM(output_tokens),0), COALESCE(SUM(cost_usd),0) FROM responses WHERE created_at >= ?",
            (t,),
        )[0]
        f = self._rows("SELECT COUNT(*) FROM failures WHERE time >= ?", (t,))[0][0]
        return {
            "responses": r[0],
            "failures": f,
            "input_tokens": r[1],
            "cached_input_tokens": r[2],
            "output_tokens": r[3],
            "cost_usd": r[4],
        }

    def iter_rows(self) -> Iterator[tuple[Any, ...]]:
        """Iterate raw response rows (for exports); columns as in :meth:`responses` plus ``request``."""
        yield from self._rows(f"SELECT {_RESPONSE_COLUMNS}, request FROM responses")

    # -- provider batch jobs -----------------------------------------------------------------------------
    def _batches(self) -> AbstractContextManager[sqlite3.Connection]:
        """``_guard()``, after creating the batch tables on first use (a cache that never ran a batch has none)."""
        if not self._batch_tables:
            with self._guard() as conn:
                conn.executescript(_BATCH_SCHEMA)
            self._batch_tables = True
        return self._guard()

    def record_batch(
        self,
        batch_id: str,
        *,
        provider: str,
        backend: str,
        model: str,
        status: str,
        items: Sequence[tuple[str, LLMRequest]],
    ) -> None:
        """Commit a batch the provider accepted and its ``(key, request)`` items in one transaction."""
        with self._batches() as conn, self._transaction(conn):
            conn.execute(
                f"INSERT OR REPLACE INTO batches ({_BATCH_COLUMNS}) VALUES (?,?,?,?,?,?,?,NULL)",
                (batch_id, provider, backend, model, status, len(items), time.time()),
            )
            conn.execute("DELETE FROM batch_requests WHERE batch_id = ?", (batch_id,))
            conn.executemany(
                "INSERT OR REPLACE INTO batch_requests (batch_id, key, tag, request) VALUES (?,?,?,?)",
                [(batch_id, key, req.tag, req.model_dump_json()) for key, req in items],
            )

    def open_batches(self, backend: str, keys: Sequence[str]) -> dict[str, set[str]]:
        """Uncollected batches of ``backend`` holding any of ``keys``: ``{batch_id: the keys it holds}``,
        oldest batch first."""
        out: dict[str, set[str]] = {}
        with self._batches() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT r.batch_id, r.key FROM batch_requests r JOIN batches b ON b.batch_id = r.batch_id "
                    f"WHERE b.collected_at IS NULL AND b.backend = ? AND r.key IN ({marks}) "
                    "ORDER BY b.submitted_at",
                    [backend, *chunk],
                ).fetchall()
                for batch_id, key in rows:
                    out.setdefault(batch_id, set()).add(key)
        return out

    def batch_requests(self, batch_id: str) -> dict[str, LLMRequest]:
        """The requests a batch was submitted with, by key (tags restored)."""
        with self._batches() as conn:
            rows = conn.execute(
                "SELECT key, tag, request FROM batch_requests WHERE batch_id = ?", (batch_id,)
            ).fetchall()
        return {
            key: LLMRequest.model_validate_json(req).model_copy(update={"tag": tag}) for key, tag, req in rows
        }

    def set_batch_status(self, batch_id: str, status: str, *, collected: bool = False) -> None:
        """Update a batch's status; ``collected`` marks its results as merged into the cache."""
        with self._batches() as conn:
            if collected:
                conn.execute(
                    "UPDATE batches SET status = ?, collected_at = ? WHERE batch_id = ?",
                    (status, time.time(), batch_id),
                )
            else:
                conn.execute("UPDATE batches SET status = ? WHERE batch_id = ?", (status, batch_id))

    def batch_jobs(self) -> pd.DataFrame:
        """The batches submitted through this cache: batch_id, provider, backend, model, status, n_requests,
        submitted_at and collected_at (UTC; ``NaT`` while not yet collected)."""
        with self._batches() as conn:
            rows = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM batches ORDER BY submitted_at").fetchall()
        df = pd.DataFrame.from_records(rows, columns=[c.strip() for c in _BATCH_COLUMNS.split(",")])
        for col in ("submitted_at", "collected_at"):
            df[col] = pd.to_datetime(df[col], unit="s", utc=True)
        return df
