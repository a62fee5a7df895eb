"""What the provider backends share: structured-output parsing, the repair prompt, Retry-After, redaction."""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema

from persona_lab.llm._types import LLMError, Usage

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
CHOICE_FIELD = "choice"
"""Property name of the one-field JSON object used to constrain closed choices."""


def load_prompt(name: str) -> str:
    """Read a prompt template shipped in ``persona_lab/llm/prompts`` (``persona_lab.templates.load_template``)."""
    from persona_lab.templates import load_template

    return load_template("persona_lab.llm", f"prompts/{name}")


def choice_schema(choices: Sequence[str]) -> dict[str, Any]:
    """JSON schema of ``{"choice": <one of choices>}``: how closed choices are constrained natively."""
    return {
        "title": "choice",
        "type": "object",
        "properties": {CHOICE_FIELD: {"type": "string", "enum": list(choices)}},
        "required": [CHOICE_FIELD],
        "additionalProperties": False,
    }


def find_choice(text: str, choices: Sequence[str]) -> str | None:
    """Return the choice that occurs first in ``text`` as a whole token, or ``None``.

    An exact match of the stripped text wins; otherwise the earliest occurrence bounded by non-word
    characters (longest choice on ties), compared case-sensitively, then case-insensitively.
    """
    stripped = text.strip().strip("\"'`.").strip()
    if stripped in choices:
        return stripped
    for flags in (0, re.IGNORECASE):
        best: tuple[int, int, str] | None = None
        for c in choices:
            m = re.search(rf"(?<!\w){re.escape(c)}(?!\w)", text, flags)
            if m and (best is None or (m.start(), -len(c)) < (best[0], best[1])):
                best = (m.start(), -len(c), c)
        if best is not None:
            return best[2]
    return None


class StructuredError(ValueError):
    """The answer is not valid JSON for the schema (the reason goes into the repair prompt)."""


def _strip_fences(text: str) -> str:
    t = text.strip()
    m = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", t, re.DOTALL)
    return m.group(1) if m else t


def validate_json(value: Any, schema: Mapping[str, Any]) -> Any:
    """Validate a decoded JSON value against ``schema`` (Draft 2020-12); return it or raise StructuredError."""
    try:
        jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise StructuredError(f"the JSON does not satisfy the schema at {where}: {exc.message}") from None
    return value


def parse_json(text: str, schema: Mapping[str, Any]) -> Any:
    """Decode ``text`` (tolerating a Markdown code fence) and validate it; raise StructuredError otherwise."""
    try:
        value = json.loads(_strip_fences(text))
    except json.JSONDecodeError as exc:
        # some decoder messages end in "at" ("Unterminated string starting at"): say "at" once
        msg = exc.msg.removesuffix(" at")
        raise StructuredError(f"it is not valid JSON ({msg} at character {exc.pos})") from None
    return validate_json(value, schema)


def parse_answer(
    text: str, json_schema: Mapping[str, Any] | None, choices: Sequence[str] | None
) -> tuple[Any | None, str | None]:
    """Parse a structured answer: returns ``(parsed, choice)``.

    With ``choices``: the ``{"choice": ...}`` object if the text is one, else the first matching token
    (servers that ignore the response format). With ``json_schema``: the validated JSON value.

    Raises:
        StructuredError: when no valid answer can be read.
    """
    if choices is not None:
        try:
            obj = json.loads(_strip_fences(text))
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and obj.get(CHOICE_FIELD) in choices:
            return None, obj[CHOICE_FIELD]
        if isinstance(obj, str) and obj in choices:
            return None, obj
        found = find_choice(text, choices)
        if found is None:
            raise StructuredError(f"the answer is none of the allowed choices {list(choices)}")
        return None, found
    if json_schema is not None:
        return parse_json(text, json_schema), None
    return None, None


def repair_prompt(error: str, schema: Mapping[str, Any]) -> str:
    """The follow-up user message of the one repair attempt (template ``prompts/repair_json.txt``)."""
    return load_prompt("repair_json.txt").format(error=error, schema=json.dumps(schema, ensure_ascii=False))


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), else ``None``."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-*]{4,}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove API keys from a message before it is logged or recorded.

    Every occurrence of a known secret is replaced, and anything shaped like a provider key (``sk-...``)
    is cut to its first characters.
    """
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "[redacted]")
    return _KEY_LIKE.sub(r"\1[redacted]", text)


def status_error_message(body: object, fallback: str) -> str:
    """The provider's own message from an error body (``{"error": {"message": ...}}``), else ``fallback``."""
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping) and isinstance(err.get("message"), str):
            code = err.get("code") or err.get("type")
            return f"{err['message']} ({code})" if code else err["message"]
    return fallback


def status_kind(status: int) -> str:
    """Failure kind of an HTTP status: 401/402/403 auth, 408 timeout, 409/5xx server, 429 rate_limit,
    other 4xx invalid_request."""
    if status in (401, 402, 403):
        return "auth"
    if status == 408:
        return "timeout"
    if status == 429:
        return "rate_limit"
    if status == 409 or status >= 500:
        return "server"
    if 400 <= status < 500:
        return "invalid_request"
    return "other"


def classify_status(status: int, body: object, headers: Mapping[str, str] | None, fallback: str) -> LLMError:
    """Turn an HTTP error response into an ``LLMError`` with kind, the provider's message and Retry-After.

    OpenAI's 429 ``insufficient_quota`` is not transient (every call would fail): it is classified as auth.
    """
    kind = status_kind(status)
    msg = status_error_message(body, fallback)
    if status == 429 and "insufficient_quota" in msg:
        kind = "auth"
    return LLMError(kind, f"HTTP {status}: {msg}", retry_after=retry_after_seconds(headers))  # type: ignore[arg-type]


def add_usage(a: Usage, b: Usage) -> Usage:
    """The sum of two usages (an answer plus its repair call)."""
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        cached_input_tokens=a.cached_input_tokens + b.cached_input_tokens,
        cache_write_input_tokens=a.cache_write_input_tokens + b.cache_write_input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
    )


def sdk_error(exc: Exception, sdk: ModuleType, secrets: Iterable[str] = ()) -> LLMError:
    """Classify an exception of the ``openai`` or ``anthropic`` SDK (both share one error hierarchy).

    HTTP errors are classified by status (``classify_status``), keeping the provider's message and
    Retry-After; ``APITimeoutError`` is ``timeout``, ``APIConnectionError`` ``connection``,
    a body that is not JSON (cut off, garbled) ``server`` (retried), ``APIResponseValidationError`` and
    anything else ``other``. Every reason is redacted of ``secrets``.
    """
    if isinstance(exc, sdk.APIStatusError):
        err = classify_status(exc.status_code, exc.body, exc.response.headers, str(exc))
        return LLMError(err.kind, redact(err.reason, secrets), err.retry_after)
    if isinstance(exc, sdk.APITimeoutError):  # a subclass of APIConnectionError: test it first
        return LLMError("timeout", "request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        return LLMError("connection", redact(f"{exc}: {exc.__cause__ or ''}", secrets))
    if isinstance(exc, json.JSONDecodeError):  # the HTTP body itself is cut off or garbled: a server fault
        return LLMError("server", redact(f"truncated or malformed response body ({exc})", secrets))
    if isinstance(exc, sdk.APIResponseValidationError):
        return LLMError("other", redact(f"malformed response: {exc}", secrets))
    return LLMError("other", redact(f"{type(exc).__name__}: {exc}", secrets))
