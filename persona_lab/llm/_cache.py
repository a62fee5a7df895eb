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
- ``meta``: the cache format version.

API keys never reach the cache: requests hold only messages and sampling parameters, backend specs hold no
secrets, and failure reasons are redacted by the backends before they are recorded.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.llm._types import LLMFailure, LLMRequest, LLMResponse

CACHE_FILENAME = "llm_cache.sqlite"
"""File name of the response cache inside a run directory."""
CACHE_FORMAT = "1"
"""Stored in the ``meta`` table; a cache written by another format is refused with a clear message."""
KEY_VERSION = "pl1"
"""Prefix of every hashed key payload; bump it when the meaning of a request changes."""

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

_RESPONSE_COLUMNS = (
    "key, backend, model, text, parsed, choice, input_tokens, cached_input_tokens, cache_write_input_tokens, "
    "output_tokens, cost_usd, latency_s, created_at, tag"
)
_CHUNK = 500  # keys per "IN (...)" lookup, below SQLite's default limit on host parameters


def request_payload(request: LLMRequest, backend: str, model: str) -> dict[str, Any]:
    """Return everything that determines the answer to ``request`` on a backend, as plain JSON data.

    The payload holds the backend spec, the model, the messages, temperature, max tokens, seed, JSON schema,
    closed choices and sample index. The caller's ``tag`` is excluded (it labels, it does not determine).
    """
    return {
        "v": KEY_VERSION,
        "backend": backend,
        "model": model,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "seed": request.seed,
        "json_schema": request.json_schema,
        "choices": list(request.choices) if request.choices is not None else None,
        "sample_index": request.sample_index,
    }


def request_json(request: LLMRequest, backend: str, model: str) -> str:
    """The canonical JSON of ``request_payload`` (sorted keys, no spaces): what the key hashes and the
    ``request`` column stores."""
    return json.dumps(
        request_payload(request, backend, model), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )


def key_of_json(blob: str) -> str:
    """The cache key of a canonical request JSON (BLAKE2b-128, 32 hex digits)."""
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()


def request_key(request: LLMRequest, backend: str, model: str) -> str:
    """Hash everything that determines the answer into the cache key (BLAKE2b-128, 32 hex digits).

    Args:
        request: The request.
        backend: The backend spec (e.g. ``openai:gpt-4o``); part of the key, so two servers never share answers.
        model: The model name the backend resolved.

    Returns:
        A stable hex key: the same request on the same backend and model always maps to the same key,
        across processes and Python versions (canonical JSON with sorted keys, no hash randomization).
    """
    return key_of_json(request_json(request, backend, model))


class ResponseCache:
    """A persistent, crash-safe cache of LLM responses and failures in one SQLite file.

    Args:
        path: The SQLite file, or a run directory (then ``<dir>/llm_cache.sqlite``). Parent directories are
            created. Use ``":memory:"`` for a throwaway cache.

    Raises:
        PersonaLabError: if the file is not a SQLite database or was written by another cache format.

    The object is safe to share between threads (one connection behind a lock). Other tables may be added
    to the same database by other modules through :attr:`connection` (under :attr:`lock`).
    """

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if str(path) != ":memory:" and (p.is_dir() or p.suffix == ""):
            p = p / CACHE_FILENAME
        self.path = p
        self.lock = threading.RLock()
        if str(path) != ":memory:":
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(
                str(path) if str(path) == ":memory:" else str(p),
                check_same_thread=False,
                isolation_level=None,  # autocommit; explicit BEGIN/COMMIT where several statements go together
                timeout=30.0,
            )
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
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
        except sqlite3.DatabaseError as exc:
            raise PersonaLabError(
                f"{p}: not a readable response cache ({exc}); move the file away to start a fresh cache"
            ) from exc

    # -- lifecycle ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the main file)."""
        with self.lock:
            self.connection.close()

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
        """Return the cached responses among ``keys`` as ``{key: response}`` (each with ``cached=True``)."""
        wanted = list(dict.fromkeys(keys))
        out: dict[str, LLMResponse] = {}
        with self.lock:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self.connection.execute(
                    f"SELECT {_RESPONSE_COLUMNS} FROM responses WHERE key IN ({marks})", chunk
                ).fetchall()
                for row in rows:
                    out[row[0]] = _row_to_response(row)
        return out

    def __contains__(self, key: object) -> bool:
        with self.lock:
            return (
                self.connection.execute("SELECT 1 FROM responses WHERE key=?", (key,)).fetchone() is not None
            )

    def __len__(self) -> int:
        with self.lock:
            return int(self.connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

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
        with self.lock:
            conn = self.connection
            before = conn.total_changes
            if len(rows) == 1 and not self._has_failures:
                # the runner's hot path: one statement in autocommit mode is its own transaction. No failure
                # row can exist for the key unless one was in the file when it was opened or was recorded
                # through this object since (both set ``_has_failures``); then the general path clears it.
                conn.execute(insert, rows[0])
                return conn.total_changes - before
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(insert, rows)
                written = conn.total_changes - before
                conn.executemany("DELETE FROM failures WHERE key=?", [(r[0],) for r in rows])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return written

    def keys(self) -> list[str]:
        """All cached response keys."""
        with self.lock:
            return [r[0] for r in self.connection.execute("SELECT key FROM responses")]

    def request(self, key: str) -> LLMRequest | None:
        """Rebuild the request stored with a cached response (its provenance), or ``None``."""
        with self.lock:
            row = self.connection.execute("SELECT request FROM responses WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return LLMRequest(
            messages=tuple({"role": r, "content": c} for r, c in data["messages"]),  # type: ignore[misc]
            temperature=data["temperature"],
            max_tokens=data["max_tokens"],
            seed=data["seed"],
            json_schema=data["json_schema"],
            choices=tuple(data["choices"]) if data["choices"] is not None else None,
            sample_index=data["sample_index"],
        )

    # -- failures ----------------------------------------------------------------------------------------
    def record_failure(self, failure: LLMFailure) -> None:
        """Record (or update) the failure of one request key."""
        with self.lock:
            self._has_failures = True
            self.connection.execute(
                "INSERT INTO failures (key, kind, reason, attempts, backend, model, time, tag) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET kind=excluded.kind, "
                "reason=excluded.reason, attempts=excluded.attempts, backend=excluded.backend, "
                "model=excluded.model, time=excluded.time, tag=excluded.tag",
                (
                    failure.key,
                    failure.kind,
                    failure.reason,
                    failure.attempts,
                    failure.backend,
                    failure.model,
                    time.time(),
                    failure.tag,
                ),
            )

    def failures(self) -> pd.DataFrame:
        """The failures table: key, kind, reason, attempts, backend, model, time (UTC), tag."""
        with self.lock:
            df = pd.read_sql_query(
                "SELECT key, kind, reason, attempts, backend, model, time, tag FROM failures ORDER BY time",
                self.connection,
            )
        df["time"] = pd.to_datetime(df["time"], unit="s", utc=True)
        return df

    # -- provenance --------------------------------------------------------------------------------------
    def responses(self) -> pd.DataFrame:
        """The provenance table: one row per cached response, without the request JSON."""
        with self.lock:
            df = pd.read_sql_query(
                f"SELECT {_RESPONSE_COLUMNS} FROM responses ORDER BY created_at", self.connection
            )
        df["created_at"] = pd.to_datetime(df["created_at"], unit="s", utc=True)
        return df

    def totals(self) -> dict[str, float]:
        """Sums over the cache: responses, failures, input/cached/output tokens and cost in USD."""
        with self.lock:
            r = self.connection.execute(
                "SELECT COUNT(*), COALESCE(SUM(input_tokens),0), COALESCE(SUM(cached_input_tokens),0), "
                "COALESCE(SUM(output_tokens),0), COALESCE(SUM(cost_usd),0) FROM responses"
            ).fetchone()
            f = self.connection.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
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
        with self.lock:
            rows = self.connection.execute(f"SELECT {_RESPONSE_COLUMNS}, request FROM responses").fetchall()
        yield from rows


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


def _row_to_response(row: tuple[Any, ...]) -> LLMResponse:
    # model_validate from plain data is the fastest way to build the model (pydantic-core, ~7 us;
    # model_construct is ~4x slower), which keeps a 100,000-response replay well above 5,000/s.
    return LLMResponse.model_validate(
        {
            "key": row[0],
            "backend": row[1],
            "model": row[2],
            "text": row[3],
            "parsed": json.loads(row[4]) if row[4] is not None else None,
            "choice": row[5],
            "usage": {
                "input_tokens": row[6],
                "cached_input_tokens": row[7],
                "cache_write_input_tokens": row[8],
                "output_tokens": row[9],
            },
            "cost_usd": row[10],
            "latency_s": row[11],
            "cached": True,
        }
    )
