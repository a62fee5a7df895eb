"""PERSONA's text format: one ``key: value`` line per present attribute, in :data:`TEXT_ORDER`.

Format, as released (``SynthLabsAI/PERSONA``, column ``persona``; checked on 100 released personas):

* one line ``<key>: <value>`` per attribute, ``<key>`` one of the 33 PERSONA keys, separated from the value by
  the first ``": "``; the value may itself contain ``": "`` (``big five scores``);
* absent attributes have no line (released personas use 20 to 33 keys);
* lines follow :data:`TEXT_ORDER`: the 20 census-like keys, then the optional census keys that apply, then
  ``big five scores`` ... ``religion``;
* every line ends with ``"\\n"``, including the last one.

Parsing keeps every value verbatim, so :func:`serialize_persona` (:func:`parse_persona` (t)) == t for every
text in that format. Income in generated personas is written as PERSONA's generator wrote it: ``"0"`` for
zero, otherwise the dollar amount as a float with one decimal (``"70000.0"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from persona_lab.census import NOT_APPLICABLE
from persona_lab.errors import PersonaLabError
from persona_lab.personas._schema import ATTRIBUTE_KEYS, FIELD_NAMES, TEXT_ORDER, Persona

_KEYS = frozenset(ATTRIBUTE_KEYS)

_PLACEHOLDERS = frozenset({"", "none", "nan", "null", "n/a"})


def is_absent(value: Any) -> bool:
    """No value at all: ``None``, NaN, or an empty or whitespace-only string (the key has no line).

    The census value ``"None"`` (e.g. ``disability: None``) is a value here; see :func:`is_absent_or_placeholder`.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return True
    return isinstance(value, str) and not value.strip()


def is_absent_or_placeholder(value: Any) -> bool:
    """No usable open-ended value: :func:`is_absent`, or a placeholder text such as ``"None"``, ``"nan"``,
    ``"null"`` or ``"n/a"`` (any case). The released personas write ``detailed job description: None`` for
    young children. ``"Not applicable"`` is a value (:data:`NOT_APPLICABLE`, written on purpose)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return True
    return str(value).strip().casefold() in _PLACEHOLDERS


def parse_persona(text: str, *, source: str = "<text>") -> Persona:
    """Parse one persona from PERSONA's text format.

    Lines are ``key: value``; blank lines and a missing final newline are tolerated (they cannot be
    reproduced byte for byte, everything else can). Keys may come in any order; serialization uses
    :data:`TEXT_ORDER`, the order of every released persona.

    Args:
        text: the persona text.
        source: where the text came from, used in error messages (e.g. ``"personas.json: persona 3"``).

    Raises:
        PersonaLabError: a line without ``": "``, an unknown key or a repeated key (the message names the
            source and the line number).
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":"):
                key, value = line[:-1], ""
            else:
                raise PersonaLabError(
                    f"{source}: line {number}: expected 'key: value', got {line[:60]!r}; "
                    "each attribute must be on its own line"
                )
        if key not in _KEYS:
            raise PersonaLabError(
                f"{source}: line {number}: unknown attribute key {key[:60]!r}; "
                f"expected one of PERSONA's 33 keys such as 'age', 'household language'"
            )
        if key in values:
            raise PersonaLabError(f"{source}: line {number}: attribute {key!r} appears twice; keep one line")
        values[key] = value
    if not values:
        raise PersonaLabError(f"{source}: empty persona; expected 'key: value' lines")
    return Persona.model_validate({FIELD_NAMES[k]: v for k, v in values.items()})


def serialize_persona(persona: Persona) -> str:
    """Write ``persona`` in PERSONA's text format (lines in :data:`TEXT_ORDER`, each ending in ``"\\n"``).

    Raises:
        PersonaLabError: a value contains a line break (it would not parse back).
    """
    lines: list[str] = []
    for key in TEXT_ORDER:
        value = getattr(persona, FIELD_NAMES[key])
        if value is None:
            continue
        if "\n" in value or "\r" in value:
            raise PersonaLabError(f"persona attribute {key!r} contains a line break; put it on one line")
        lines.append(f"{key}: {value}\n")
    return "".join(lines)


def read_personas(path: str | Path) -> list[Persona]:
    """Read a file of personas in PERSONA's text format.

    Accepted layouts: a JSON list of persona strings (or of objects with a ``persona`` field, like the
    released feedback rows), JSON Lines of the same, or plain text with personas separated by blank lines.

    Raises:
        PersonaLabError: unreadable, not UTF-8, empty, malformed JSON or a malformed persona; the message names
            the file (and the persona number).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PersonaLabError(f"{p}: cannot read persona file ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PersonaLabError(
            f"{p}: not UTF-8 (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); re-save the file as UTF-8"
        ) from exc
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise PersonaLabError(f"{p}: empty persona file; expected PERSONA personas ('key: value' lines)")
    stripped = text.lstrip()
    items: list[object]
    if p.suffix == ".jsonl":
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                items.append(_json(line, f"{p}: line {number}"))
    elif p.suffix == ".json" or stripped.startswith("["):
        loaded = _json(text, str(p))
        if not isinstance(loaded, list):
            raise PersonaLabError(
                f"{p}: expected a JSON list of persona strings, got {type(loaded).__name__}"
            )
        items = loaded
    else:
        items = [block for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    personas: list[Persona] = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, dict) and isinstance(item.get("persona"), str):
            item = item["persona"]
        if not isinstance(item, str):
            raise PersonaLabError(
                f"{p}: persona {i}: expected a persona string or an object with a 'persona' string, "
                f"got {type(item).__name__}"
            )
        personas.append(parse_persona(item, source=f"{p}: persona {i}"))
    return personas


def _json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PersonaLabError(
            f"{where}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc


def format_income(value: float | int | None) -> str:
    """Income (PINCP, dollars) as PERSONA writes it: ``"0"`` for zero, else one decimal (``"70000.0"``).

    ``None``/NaN (PINCP not applicable: under 15 years old) gives :data:`NOT_APPLICABLE`.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_APPLICABLE
    if value == 0:
        return "0"
    return f"{float(value):.1f}"


def _column_text(frame: pd.DataFrame, key: str) -> list[str | None]:
    """One attribute column as text, ``None`` where the attribute is absent (``None``, NaN or empty)."""
    col = frame[key]
    if key in ("age", "income"):
        numbers = pd.to_numeric(col, errors="coerce")
        bad = numbers.isna() & col.notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise PersonaLabError(
                f"personas table, column {key!r}, row {row}: expected a number, got {col.iloc[row]!r}"
            )
        if key == "income":
            return [format_income(v) for v in numbers.tolist()]
        return [None if a != a else str(int(a)) for a in numbers.tolist()]
    # v != v is True only for NaN
    return [None if v is None or v != v or v == "" else v if type(v) is str else str(v) for v in col.tolist()]


def render_texts(frame: pd.DataFrame, keys: Sequence[str] = TEXT_ORDER) -> pd.Series:
    """PERSONA text for every row of a personas table (column per PERSONA key), vectorized by column.

    Columns named like PERSONA keys are rendered; missing columns and ``None``/NaN/empty values give no line
    (open-ended fields before enrichment, optional census attributes that do not apply). ``age`` is written as
    an integer and ``income`` with :func:`format_income`.

    Raises:
        PersonaLabError: a value contains a line break (names the column and row).
    """
    parts: list[list[str]] = []
    for key in keys:
        if key not in frame.columns:
            continue
        values = _column_text(frame, key)
        if any(v is not None and ("\n" in v or "\r" in v) for v in values):
            row = next(i for i, v in enumerate(values) if v is not None and ("\n" in v or "\r" in v))
            raise PersonaLabError(
                f"personas table, column {key!r}, row {row}: value contains a line break; put it on one line"
            )
        prefix = f"{key}: "
        parts.append(["" if v is None else prefix + v + "\n" for v in values])
    if not parts:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object, name="text")
    texts = ["".join(row) for row in zip(*parts, strict=True)]
    return pd.Series(texts, index=frame.index, dtype=object, name="text")


def persona_from_row(row: pd.Series | dict[str, object]) -> Persona:
    """A :class:`Persona` from one row of a personas table (the same text as :func:`render_texts`)."""
    frame = pd.DataFrame([dict(row)])
    values: dict[str, str | None] = {}
    for key in ATTRIBUTE_KEYS:
        if key in frame.columns:
            values[key] = _column_text(frame, key)[0]
    return Persona.from_mapping(values)
