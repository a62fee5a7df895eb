"""SQLite for the response cache: what a failed operation means for the user, and bulk reads without the GC."""

from __future__ import annotations

import gc
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from persona_lab.errors import PersonaLabError

_ADVICE = {
    "damaged": "not a readable response cache ({exc}); move the file away to start a fresh cache",
    "locked": "the response cache is locked by another process ({exc}); wait until it ends and rerun",
    "unwritable": "the response cache cannot be read or written ({exc}); check the free disk space and the "
    "permissions of the run directory",
}
_PROBLEM_OF_CODE = {
    sqlite3.SQLITE_CORRUPT: "damaged",
    sqlite3.SQLITE_NOTADB: "damaged",
    sqlite3.SQLITE_BUSY: "locked",
    sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_READONLY: "unwritable",
    sqlite3.SQLITE_CANTOPEN: "unwritable",
    sqlite3.SQLITE_PERM: "unwritable",
    sqlite3.SQLITE_FULL: "unwritable",
    sqlite3.SQLITE_IOERR: "unwritable",
}
"""What a failed SQLite operation says about the file, by primary result code."""


def cache_error(path: Path, exc: sqlite3.Error) -> PersonaLabError | None:
    """The user's error for a failed SQLite operation on the cache at ``path``, or ``None`` for a bug.

    Damage (the file is not a database, or a page of it is malformed: SQLite's ``NOTADB`` and ``CORRUPT``
    codes) reads the same wherever it is found, in the header or in a data page; locks and unwritable files get
    their own advice. Errors without such a code (a closed connection, a bad statement) are not the user's.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    # the primary result code is the low byte of an extended one (SQLITE_CORRUPT_INDEX -> SQLITE_CORRUPT)
    problem = _PROBLEM_OF_CODE.get(code & 0xFF) if isinstance(code, int) else None
    if problem is None:
        return None
    return PersonaLabError(f"{path}: " + _ADVICE[problem].format(exc=exc))


# -- bulk reads without the garbage collector -----------------------------------------------------------
_GC_LOCK = threading.Lock()
_GC_PAUSES = 0
_GC_WAS_ENABLED = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk read builds many objects (re-entrant, thread-safe).

    A replay of 640,000 answers creates millions of objects that all stay alive; the collector would scan
    them again and again as they accumulate, for nothing (about half of the replay's time). Reference
    counting still frees everything as usual; only cycles wait for the collector's next run.
    """
    global _GC_PAUSES, _GC_WAS_ENABLED
    with _GC_LOCK:
        if _GC_PAUSES == 0:
            _GC_WAS_ENABLED = gc.isenabled()
            gc.disable()
        _GC_PAUSES += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES -= 1
            if _GC_PAUSES == 0 and _GC_WAS_ENABLED:
                gc.enable()
