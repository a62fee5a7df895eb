"""Atomic, schema-versioned table I/O for the run directory: every table a stage writes goes through here."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from persona_lab.errors import PersonaLabError

_UMASK = os.umask(0)
os.umask(_UMASK)

SCHEMA_VERSION = "1"
"""Stored in every table's parquet metadata under ``persona_lab.schema_version``."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash or an exception leaves no half-written artifact: the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give them the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_writable_dir(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a directory that cannot be created or written, naming it, without creating anything."""
    p = Path(path).absolute()
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise PersonaLabError(f"{what} {path}: {probe} is a file, not a directory; choose another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PersonaLabError(f"{what} {path}: {probe} is not writable; choose another path")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], *, table: str) -> Path:
    """Write ``df`` as parquet atomically, tagging it with the table name and schema version."""
    arrow = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    meta[b"persona_lab.table"] = table.encode()
    meta[b"persona_lab.schema_version"] = SCHEMA_VERSION.encode()
    arrow = arrow.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)
    return Path(path)


def read_table(path: str | os.PathLike[str], *, table: str | None = None) -> pd.DataFrame:
    """Read a table written by :func:`write_table`, checking its name and schema version."""
    p = Path(path)
    if not p.exists():
        raise PersonaLabError(f"{p}: no such table; run the stage that writes it first")
    try:
        arrow = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PersonaLabError(
            f"{p}: not a readable parquet file ({exc}); delete it and rerun its stage"
        ) from exc
    meta = arrow.schema.metadata or {}
    found = meta.get(b"persona_lab.table", b"").decode()
    version = meta.get(b"persona_lab.schema_version", b"").decode()
    if table is not None and found and found != table:
        raise PersonaLabError(f"{p}: holds table {found!r}, expected {table!r}")
    if version and version != SCHEMA_VERSION:
        raise PersonaLabError(
            f"{p}: schema version {version}, this persona_lab reads {SCHEMA_VERSION}; rerun its stage"
        )
    return arrow.to_pandas()
