"""Loading opening prompts: the embedded questions, PRISM's shipped opening prompts, a JSON list, or PRISM's
``conversations.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.paths import DATA_DIR

EMBEDDED_QUESTIONS = DATA_DIR / "questions.json"
"""The value-laden questions written for this project (offline default)."""

PRISM_PROMPTS = DATA_DIR / "prism_prompts.json"
"""The 8,011 opening prompts of the PRISM alignment dataset (Kirk et al. 2024, arXiv 2404.16019, CC-BY-4.0),
shipped with the attribution in the file: PERSONA's prompt source (Castricato et al. 2024, Sec. 3.2)."""

PromptSource = Literal["embedded", "json_list", "prism_conversations"]

PROMPT_COLUMNS = ["prompt_id", "text", "source", "topic_hint", "conversation_type"]
"""Columns of :func:`load_prompts`' table, in order."""


def load_prompts(path: Path | None = None) -> pd.DataFrame:
    """Load opening prompts into a table with one row per prompt, in file order.

    Three formats are read:

    * ``None``: the embedded value-laden questions in ``data/questions.json`` (``source="embedded"``).
    * A ``.json`` file holding a JSON list whose items are prompt strings, e.g. the 8,011 PRISM opening
      prompts (``source="json_list"``, ``prompt_id = "p00000"...`` by position), or objects with a
      ``text`` field and optional ``id`` and ``topic`` fields (the embedded file's format).
    * A JSON object whose ``prompts`` field is such a list, beside fields that attribute it (``source``,
      ``license``, ``citation``): the shipped :data:`PRISM_PROMPTS` (read exactly as the bare list).
    * PRISM's own ``conversations.jsonl`` (Kirk et al. 2024, the HF dataset ``HannahKirk/prism-alignment``):
      one JSON object per line with ``conversation_id``, ``conversation_type`` and ``opening_prompt``
      among other fields (``source="prism_conversations"``, ``prompt_id = conversation_id``). Blank lines
      are skipped. Any file whose first non-blank character is not ``[`` is read as JSON lines.

    Texts are kept exactly as written (no stripping or case folding), so the filter counts match the
    published ones.

    Args:
        path: the prompt file, or ``None`` for the embedded questions.

    Returns:
        Columns ``prompt_id`` (unique str), ``text``, ``source``, ``topic_hint`` (embedded questions only,
        else None) and ``conversation_type`` (PRISM conversations only, else None).

    Raises:
        PersonaLabError: the file is missing, empty, not JSON (naming the line for JSON lines), or holds a
            prompt that is not a string (naming its index or line).
    """
    if path is None:
        return _read_json_list(EMBEDDED_QUESTIONS, source="embedded")
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PersonaLabError(
            f"{path}: no such prompt file; pass a JSON list of prompts or PRISM's conversations.jsonl"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PersonaLabError(f"{path}: cannot read the prompt file as UTF-8 text ({exc})") from exc
    if not raw.strip():
        raise PersonaLabError(f"{path}: the prompt file is empty; it must hold at least one prompt")
    stripped = raw.lstrip()
    if stripped.startswith("["):
        return _read_json_list(path, source="json_list", raw=raw)
    if stripped.startswith("{") and path.suffix != ".jsonl":
        attributed = _attributed_list(path, raw)
        if attributed is not None:
            return _list_frame(attributed, path, "json_list")
    return _read_conversations_jsonl(path, raw)


def _attributed_list(path: Path, raw: str) -> list[Any] | None:
    """The ``prompts`` list of an attributed prompt file, or ``None`` when ``raw`` is not one (JSON lines)."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return None  # several JSON objects: PRISM's conversations.jsonl
    if not isinstance(data, dict) or "prompts" not in data:
        return None  # one JSON object: a one-line conversations.jsonl
    prompts = data["prompts"]
    if not isinstance(prompts, list):
        raise PersonaLabError(
            f"{path}: the 'prompts' field is a {type(prompts).__name__}; expected a JSON list of prompts"
        )
    return prompts


def _read_json_list(path: Path, *, source: PromptSource, raw: str | None = None) -> pd.DataFrame:
    if raw is None:
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PersonaLabError(f"{path}: cannot read the prompt file ({exc})") from exc
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PersonaLabError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            "expected a JSON list of prompt strings"
        ) from exc
    if not isinstance(items, list):
        raise PersonaLabError(f"{path}: expected a JSON list of prompts, found a {type(items).__name__}")
    return _list_frame(items, path, source)


def _list_frame(items: list[Any], path: Path, source: PromptSource) -> pd.DataFrame:
    if not items:
        raise PersonaLabError(f"{path}: the prompt list is empty; it must hold at least one prompt")
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            rows.append(_row(f"p{i:05d}", item, source))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            pid = item.get("id", f"p{i:05d}")
            topic = item.get("topic")
            if not isinstance(pid, str) or (topic is not None and not isinstance(topic, str)):
                raise PersonaLabError(
                    f"{path}: prompt at index {i} has a non-string 'id' or 'topic'; both must be strings"
                )
            rows.append(_row(pid, item["text"], source, topic_hint=topic))
        else:
            shown = json.dumps(item)[:60]
            raise PersonaLabError(
                f"{path}: prompt at index {i} is not a string (found {type(item).__name__}: {shown}); "
                "each item must be a prompt string or an object with a string 'text' field"
            )
    return _frame(rows, path)


def _read_conversations_jsonl(path: Path, raw: str) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PersonaLabError(
                f"{path}, line {lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "expected one PRISM conversation object per line (conversations.jsonl)"
            ) from exc
        if not isinstance(record, dict) or "opening_prompt" not in record:
            raise PersonaLabError(
                f"{path}, line {lineno}: expected a PRISM conversation object with an 'opening_prompt' "
                "field; is this PRISM's conversations.jsonl (not survey.jsonl or utterances.jsonl)?"
            )
        text = record["opening_prompt"]
        if not isinstance(text, str):
            raise PersonaLabError(
                f"{path}, line {lineno}: 'opening_prompt' is not a string (found {type(text).__name__})"
            )
        cid = record.get("conversation_id", f"line{lineno}")
        ctype = record.get("conversation_type")
        rows.append(
            _row(
                str(cid),
                text,
                "prism_conversations",
                conversation_type=ctype if isinstance(ctype, str) else None,
            )
        )
    if not rows:
        raise PersonaLabError(f"{path}: no conversations found; the file holds only blank lines")
    return _frame(rows, path)


def _row(
    prompt_id: str,
    text: str,
    source: PromptSource,
    *,
    topic_hint: str | None = None,
    conversation_type: str | None = None,
) -> dict[str, Any]:
    return {
        "prompt_id": prompt_id,
        "text": text,
        "source": source,
        "topic_hint": topic_hint,
        "conversation_type": conversation_type,
    }


def _frame(rows: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=PROMPT_COLUMNS)
    dup = df["prompt_id"].duplicated(keep="first")
    if dup.any():
        first = df.loc[dup, "prompt_id"].iloc[0]
        raise PersonaLabError(f"{path}: prompt id {first!r} occurs more than once; prompt ids must be unique")
    for col in ("topic_hint", "conversation_type"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df
