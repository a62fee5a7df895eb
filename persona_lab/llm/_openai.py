"""OpenAI and OpenAI-compatible servers through the official ``openai`` SDK (``AsyncOpenAI``).

Conventions:

- The SDK's own retries are off (``max_retries=0``); the runner is the only place that retries.
- JSON answers use the native structured output (``response_format={"type": "json_schema", ...}``);
  ``strict`` is set only when the schema already meets OpenAI's strict subset (every object closed with
  ``additionalProperties: false`` and every property required), otherwise the schema guides decoding.
  The answer is validated with ``jsonschema``; malformed or invalid JSON gets one repair attempt (the
  model sees its answer and the validation error, template ``prompts/repair_json.txt``).
- A self-hosted server that answers ``json_schema`` with an error naming the parameter (llama-cpp-python's
  takes only ``{"type": "json_object", "schema": ...}``) gets that form from then on; no other error
  changes the request (see ``refuses_json_schema``).
- Closed choices are constrained by a JSON schema enum (``{"choice": one of choices}``) and validated; a
  server that ignores the response format is read by the first matching token of its text.
- A refusal (the message's ``refusal`` field or ``finish_reason == "content_filter"``) is
  ``LLMError("refusal")``, recorded by the runner, never retried.
- Usage: ``prompt_tokens`` (which includes ``prompt_tokens_details.cached_tokens``, OpenAI's automatic
  prompt caching) and ``completion_tokens``; a repair call's usage is added.
- The OpenAI API gets ``max_completion_tokens``; compatible servers (``@url``) get ``max_tokens``, which
  vLLM, llama.cpp and Ollama all accept.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from persona_lab.errors import PersonaLabError
from persona_lab.llm._common import (
    StructuredError,
    add_usage,
    choice_schema,
    parse_answer,
    repair_prompt,
    sdk_error,
    status_error_message,
)
from persona_lab.llm._spec import NO_KEY, BackendSpec
from persona_lab.llm._types import LLMError, LLMRequest, LLMResponse, Usage

if TYPE_CHECKING:
    from persona_lab.config import LLMConfig


def _strict_ok(schema: Any) -> bool:
    """True if every object in ``schema`` is closed and requires all its properties (OpenAI strict mode)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(
                props
            ):
                return False
        return all(_strict_ok(v) for v in schema.values())
    if isinstance(schema, list):
        return all(_strict_ok(v) for v in schema)
    return True


_NAMES_SCHEMA_PARAMETER = re.compile(r"response_format|json_schema", re.IGNORECASE)


def refuses_json_schema(status: int, message: str) -> bool:
    """True when an error response says the server does not take ``response_format: json_schema``.

    That is a 400 or 422 (the request failed validation) whose message names the parameter
    (``response_format`` or ``json_schema``), or a 500 naming it: llama-cpp-python's server reports a request
    that fails its validation as a 500 with the validation error as message. A 500 that names neither is a
    server error like any other, retried and never a reason to change the request.
    """
    return status in (400, 422, 500) and _NAMES_SCHEMA_PARAMETER.search(message) is not None


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``response_format`` parameter for a JSON schema (name from its ``title``)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title", "answer")))[:64] or "answer"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": _strict_ok(schema)},
    }


class OpenAIBackend:
    """Chat completions from the OpenAI API or any OpenAI-compatible server.

    Args:
        parsed: The parsed spec (``openai:MODEL`` or ``openai:MODEL@URL``).
        api_key: The key (read from the environment by ``get_backend``); never stored anywhere else.
        config: Timeout (``timeout_s``).
        http_client: An ``httpx2.AsyncClient`` for the SDK (tests pass one with a ``MockTransport``).
    """

    def __init__(
        self, parsed: BackendSpec, *, api_key: str, config: LLMConfig | None = None, http_client: Any = None
    ) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise PersonaLabError(
                f"backend {parsed.spec!r} needs the openai package: pip install openai ({exc})"
            ) from exc
        from persona_lab.config import LLMConfig

        cfg = config or LLMConfig()
        self.spec = parsed.spec
        self.model = parsed.model
        self.base_url = parsed.base_url
        self._json_object_schema = False
        """True once a self-hosted server refused ``json_schema`` and took ``json_object`` + ``schema``."""
        self._openai = openai
        self._secrets = tuple(k for k in (api_key,) if k and k != NO_KEY)
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=parsed.base_url,
            max_retries=0,
            timeout=cfg.timeout_s,
            http_client=http_client,
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(spec={self.spec!r})"

    def build_params(self, request: LLMRequest) -> dict[str, Any]:
        """The chat-completions parameters besides ``messages`` (also the body of an OpenAI Batch line)."""
        params: dict[str, Any] = {
            "model": self.model,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        params["max_tokens" if self.base_url else "max_completion_tokens"] = request.max_tokens
        schema = request.json_schema if request.choices is None else choice_schema(request.choices)
        if schema is not None:
            params["response_format"] = (
                {"type": "json_object", "schema": schema}
                if self._json_object_schema
                else response_format(schema)
            )
        return params

    def _schema_fallback(self, params: dict[str, Any], exc: Exception) -> dict[str, Any] | None:
        """Parameters to retry with when a self-hosted server rejects the ``json_schema`` response format.

        Some OpenAI-compatible servers (llama-cpp-python's) accept only ``{"type": "json_object", "schema": ...}``.
        Only an error that says so switches this backend to that form for the rest of the run (see
        ``refuses_json_schema``); any other error, a transient 500 included, is an ordinary failure. The hosted
        OpenAI API is never switched.
        """
        fmt = params.get("response_format") or {}
        if not self.base_url or fmt.get("type") != "json_schema":
            return None
        if not isinstance(exc, self._openai.APIStatusError):
            return None
        if not refuses_json_schema(exc.status_code, status_error_message(exc.body, str(exc))):
            return None
        self._json_object_schema = True
        return self._adapt(params)

    def _adapt(self, params: dict[str, Any]) -> dict[str, Any]:
        fmt = params.get("response_format") or {}
        if self._json_object_schema and fmt.get("type") == "json_schema":
            return {
                **params,
                "response_format": {"type": "json_object", "schema": fmt["json_schema"]["schema"]},
            }
        return params

    async def _create(self, messages: list[dict[str, str]], params: dict[str, Any]) -> tuple[str, Usage]:
        params = self._adapt(params)
        try:
            comp = await self._client.chat.completions.create(messages=messages, **params)  # type: ignore[arg-type]
        except self._openai.APIError as exc:
            fallback = self._schema_fallback(params, exc)
            if fallback is not None:
                return await self._create(messages, fallback)
            raise sdk_error(exc, self._openai, self._secrets) from None
        except json.JSONDecodeError as exc:  # the SDK read a cut-off or garbled HTTP body
            raise sdk_error(exc, self._openai, self._secrets) from None
        if not comp.choices:
            raise LLMError("server", "the response has no choices")
        choice = comp.choices[0]
        msg = choice.message
        if getattr(msg, "refusal", None):
            raise LLMError("refusal", str(msg.refusal))
        if choice.finish_reason == "content_filter":
            raise LLMError("refusal", "finish_reason content_filter")
        u = comp.usage
        usage = Usage()
        if u is not None:
            details = getattr(u, "prompt_tokens_details", None)
            cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
            usage = Usage(
                input_tokens=u.prompt_tokens or 0,
                cached_input_tokens=cached,
                output_tokens=u.completion_tokens or 0,
            )
        return msg.content or "", usage

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer one request (see the module docstring for the conventions); raise ``LLMError`` on failure."""
        t0 = time.perf_counter()
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        params = self.build_params(request)
        text, usage = await self._create(messages, params)
        parsed = choice = None
        if request.json_schema is not None or request.choices is not None:
            try:
                parsed, choice = parse_answer(text, request.json_schema, request.choices)
            except StructuredError as first:
                fmt = params["response_format"]
                schema = fmt["json_schema"]["schema"] if fmt["type"] == "json_schema" else fmt["schema"]
                messages += [
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": repair_prompt(str(first), schema)},
                ]
                text, usage2 = await self._create(messages, params)
                usage = add_usage(usage, usage2)
                try:
                    parsed, choice = parse_answer(text, request.json_schema, request.choices)
                except StructuredError as second:
                    raise LLMError("unparseable", f"after one repair attempt: {second}") from None
        return LLMResponse(
            text=text,
            parsed=parsed,
            choice=choice,
            usage=usage,
            latency_s=time.perf_counter() - t0,
            backend=self.spec,
            model=self.model,
        )

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.close()
