"""The inputs of the Pink Elephants pipeline: the conversation domains and, optionally, a user's entity pairs.

Suppressing Pink Elephants (Castricato et al. 2024, arXiv 2402.07896, Sec. 3) starts from everyday-conversation
topics filtered by hand to 29 domains. The paper does not publish its list; ``data/elephant_domains.json`` holds 29
domains written for this project (travel, sports, technology, health, careers, ...), each with a short description
of the entities it holds. A user can point ``elephants.domains`` at another file, or skip the LLM's pair step with
``elephants.pairs``.

Accepted files: JSON (a list of objects), JSON Lines (one object per line) or CSV with a header row.

* domains: column ``domain`` (required, non-empty), ``description`` (optional).
* pairs: columns ``domain``, ``grey``, ``pink`` (required, non-empty); ``grey_aliases`` and ``pink_aliases``
  (optional: a JSON list, or in CSV one string with the aliases separated by ``;``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.paths import DATA_DIR

EMBEDDED_DOMAINS = DATA_DIR / "elephant_domains.json"
"""The 29 domains written for this project."""

PAPER_DOMAINS = 29
"""Domains left after the paper's manual filtering (Sec. 3)."""

DOMAIN_COLUMNS = ("domain",)
PAIR_COLUMNS = ("domain", "grey", "pink")
ALIAS_COLUMNS = ("grey_aliases", "pink_aliases")


def _read_records(path: Path, what: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise PersonaLabError(f"{path}: {what} file not found; give an existing .json, .jsonl or .csv file")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PersonaLabError(f"{path}: cannot read the {what} file ({exc})") from exc
    try:
        if suffix == ".csv":
            return [dict(row) for row in csv.DictReader(text.splitlines())]
        if suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif suffix == ".json":
            records = json.loads(text)
        else:
            raise PersonaLabError(f"{path}: unknown {what} file type {suffix!r}; use .json, .jsonl or .csv")
    except json.JSONDecodeError as exc:
        raise PersonaLabError(f"{path}: the {what} file is not valid JSON ({exc})") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise PersonaLabError(
            f"{path}: expected a list of objects (one per {what[:-1]}), got {type(records).__name__}"
        )
    return records


def _check(records: list[dict[str, Any]], required: tuple[str, ...], path: Path, what: str) -> None:
    if not records:
        raise PersonaLabError(f"{path}: the {what} file has no rows; give at least one")
    columns = set().union(*(r.keys() for r in records))
    missing = [c for c in required if c not in columns]
    if missing:
        raise PersonaLabError(
            f"{path}: the {what} file lacks column(s) {missing}; expected columns {list(required)} "
            f"(found {sorted(columns)})"
        )
    for i, record in enumerate(records, start=1):
        for column in required:
            value = record.get(column)
            if value is None or not str(value).strip():
                raise PersonaLabError(
                    f"{path}: row {i} has an empty {column!r}; every row needs a non-empty {column!r} "
                    "(fill it in or delete the row)"
                )


def _aliases(value: Any, path: Path, row: int, column: str) -> list[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PersonaLabError(
                    f"{path}: row {row}, column {column!r}: not a JSON list ({exc})"
                ) from exc
        else:
            return [a.strip() for a in text.split(";") if a.strip()]
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise PersonaLabError(
            f"{path}: row {row}, column {column!r}: expected a list of names (or names separated by ';')"
        )
    return [a.strip() for a in value if a.strip()]


def load_domains(path: str | Path | None = None) -> pd.DataFrame:
    """The conversation domains: ``domain`` and ``description``, in file order.

    Args:
        path: a domains file (see the module docstring); ``None`` reads the 29 embedded domains.

    Raises:
        PersonaLabError: the file is missing or unreadable, lacks the ``domain`` column, has an empty domain or
            names a domain twice (names the file and the row).
    """
    file = Path(path) if path is not None else EMBEDDED_DOMAINS
    records = _read_records(file, "domains")
    _check(records, DOMAIN_COLUMNS, file, "domains")
    out = pd.DataFrame(
        {
            "domain": [str(r["domain"]).strip() for r in records],
            "description": [str(r.get("description") or "").strip() for r in records],
        }
    )
    repeated = out["domain"].str.casefold().duplicated()
    if repeated.any():
        row = int(repeated.to_numpy().argmax()) + 1
        raise PersonaLabError(
            f"{file}: row {row} repeats the domain {out['domain'].iloc[row - 1]!r}; list each once"
        )
    return out


def load_pairs(path: str | Path) -> pd.DataFrame:
    """A user's entity pairs: ``domain``, ``grey``, ``pink``, ``grey_aliases``, ``pink_aliases`` (lists).

    Raises:
        PersonaLabError: the file is missing or unreadable, lacks a required column, has an empty entity or
            domain, or aliases that are not a list of names (names the file, the row and the column).
    """
    file = Path(path)
    records = _read_records(file, "pairs")
    _check(records, PAIR_COLUMNS, file, "pairs")
    rows = []
    for i, r in enumerate(records, start=1):
        rows.append(
            {
                "domain": str(r["domain"]).strip(),
                "grey": str(r["grey"]).strip(),
                "pink": str(r["pink"]).strip(),
                **{c: _aliases(r.get(c), file, i, c) for c in ALIAS_COLUMNS},
            }
        )
    return pd.DataFrame(rows, columns=[*PAIR_COLUMNS, *ALIAS_COLUMNS])
