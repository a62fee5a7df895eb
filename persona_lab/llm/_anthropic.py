"""Anthropic through the official ``anthropic`` SDK (``AsyncAnthropic``).

Conventions:

- The SDK's own retries are off (``max_retries=0``); the runner is the only place that retries.
- System messages become the ``system`` parameter. Prompt caching: the system prompt carries
  ``cache_control: {"type": "ephemeral"}``, and so does the message before the last one when a request has
  a multi-turn prefix (few-shot dialogues), so requests that share these prefixes read them from the
  cache at 0.1x the input price. (Anthropic caches only prefixes above a minimum length, 1,024 tokens for
  Sonnet/Opus, 2,048 for Haiku; shorter marked prefixes are simply not cached.)
- JSON answers use tool use, the native way: one tool ``answer`` whose ``input_schema`` is the request's
  schema, forced with ``tool_choice``; a schema that is not an object is wrapped as ``{"value": schema}``
  and unwrapped. The tool input is validated with ``jsonschema``; an invalid answer gets one repair attempt
  (a ``tool_result`` with ``is_error`` and the validation error).
- Closed choices are a tool whose input is ``{"choice": one of choices}`` (a JSON schema enum), validated.
- ``stop_reason == "refusal"`` is ``LLMError("refusal")``.
- Usage: Anthropic's ``input_tokens`` excludes cache reads and writes, so ``Usage.input_tokens`` is
  ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``, with the reads in
  ``cached_input_tokens`` and the writes in ``cache_write_input_tokens``.
- ``temperature`` goes in the request body (``extra_body``: recent SDKs dropped the typed parameter, the
  Messages API accepts it for the Claude 3/4 models). ``seed`` is not an Anthropic parameter; it still
  distinguishes requests in the cache key.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from persona_lab.errors import PersonaLabError
from persona_lab.llm._common import (
    CHOICE_FIELD,
    StructuredError,
    add_usage,
    choice_schema,
    parse_answer,
    repair_prompt,
    sdk_error,
    validate_json,
)
from persona_lab.llm._spec import NO_KEY, BackendSpec
from persona_lab.llm._types import LLMError, LLMRequest, LLMResponse, Usage

if TYPE_CHECKING:
    from persona_lab.config import LLMConfig

TOOL_NAME = "answer"
_EPHEMERAL = {"type": "ephemeral"}


def _tool_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The tool ``input_schema`` for a JSON schema, and whether the answer is wrapped in ``{"value": ...}``."""
    if schema.get("type") == "object" or ("properties" in schema and "type" not in schema):
        return schema, False
    defs: dict[str, Any] = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
    inner = {k: v for k, v in schema.items() if k not in defs}
    return {"type": "object", "properties": {"value": inner}, "required": ["value"], **defs}, True


class AnthropicBackend:
    """Messages from the Anthropic API (or an Anthropic-compatible server with ``@url``).

    Args:
        parsed: The parsed spec (``anthropic:MODEL``).
        api_key: The key (read from the environment by ``get_backend``); never stored anywhere else.
        config: Timeout (``timeout_s``).
        http_client: An ``httpx2.AsyncClient`` for the SDK (tests pass one with a ``MockTransport``).
    """

    def __init__(
        self, parsed: BackendSpec, *, api_key: str, config: LLMConfig | None = None, http_client: Any = None
    ) -> None:
        try:
            import anthropic
        except ImportError as exc:  # pragma: no cover - anthropic is a core dependency
            raise PersonaLabError(
                f"backend {parsed.spec!r} needs the anthropic package: pip install anthropic ({exc})"
            ) from exc
        from persona_lab.config import LLMConfig

        cfg = config or LLMConfig()
        self.spec = parsed.spec
        self.model = parsed.model
        self._anthropic = anthropic
        self._secrets = tuple(k for k in (api_key,) if k and k != NO_KEY)
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=parsed.base_url,
            max_retries=0,
            timeout=cfg.timeout_s,
            http_client=http_client,
        )

    def __repr__(self) -> str:
        return f"AnthropicBackend(spec={self.spec!r})"

    def build_params(self, request: LLMRequest) -> dict[str, Any]:
        """The Messages API request body for a request (also the ``params`` of a Message Batches item)."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        turns = [m for m in request.messages if m.role != "system"]
        messages: list[dict[str, Any]] = []
        for i, m in enumerate(turns):
            block: dict[str, Any] = {"type": "text", "text": m.content}
            if len(turns) > 1 and i == len(turns) - 2:
                block["cache_control"] = _EPHEMERAL
            messages.append({"role": m.role, "content": [block]})
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "messages": messages,
        }
        if system:
            params["system"] = [{"type": "text", "text": system, "cache_control": _EPHEMERAL}]
        schema = request.json_schema if request.choices is None else choice_schema(request.choices)
        if schema is not None:
            tool_schema, _ = _tool_schema(schema)
            params["tools"] = [
                {
                    "name": TOOL_NAME,
                    "description": "Give your answer through this tool, in exactly this structure.",
                    "input_schema": tool_schema,
                }
            ]
            params["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        return params

    async def _create(self, params: dict[str, Any]) -> tuple[Any, Usage]:
        # the installed SDK no longer types ``temperature``; the Messages API takes it in the body
        body = dict(params)
        extra = {"temperature": body.pop("temperature")} if "temperature" in body else None
        try:
            msg = await self._client.messages.create(**body, extra_body=extra)
        except self._anthropic.APIError as exc:
            raise sdk_error(exc, self._anthropic, self._secrets) from None
        except json.JSONDecodeError as exc:  # the SDK read a cut-off or garbled HTTP body
            raise sdk_error(exc, self._anthropic, self._secrets) from None
        if msg.stop_reason == "refusal":
            raise LLMError("refusal", "stop_reason refusal")
        return msg, usage_of(msg.usage)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer one request (see the module docstring for the conventions); raise ``LLMError`` on failure."""
        t0 = time.perf_counter()
        params = self.build_params(request)
        msg, usage = await self._create(params)
        schema = request.json_schema if request.choices is None else choice_schema(request.choices)
        if schema is None:
            text = "".join(b.text for b in msg.content if b.type == "text")
            return self._response(text, None, None, usage, t0)
        try:
            text, parsed, choice = self._read(msg, request, schema)
        except StructuredError as first:
            tool_use = next((b for b in msg.content if b.type == "tool_use"), None)
            if tool_use is not None:
                feedback: list[dict[str, Any]] = [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_use.id,
                        "is_error": True,
                        "content": repair_prompt(str(first), schema),
                    }
                ]
            else:
                feedback = [{"type": "text", "text": repair_prompt(str(first), schema)}]
            assistant = [b.model_dump(exclude_none=True) for b in msg.content]
            repair = dict(params)
            repair["messages"] = [
                *params["messages"],
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": feedback},
            ]
            msg, usage2 = await self._create(repair)
            usage = add_usage(usage, usage2)
            try:
                text, parsed, choice = self._read(msg, request, schema)
            except StructuredError as second:
                raise LLMError("unparseable", f"after one repair attempt: {second}") from None
        return self._response(text, parsed, choice, usage, t0)

    def _read(self, msg: Any, request: LLMRequest, schema: dict[str, Any]) -> tuple[str, Any, str | None]:
        """Read a structured answer from a message: the forced tool's input, or JSON/choice text."""
        tool_use = next((b for b in msg.content if b.type == "tool_use" and b.name == TOOL_NAME), None)
        if tool_use is None:
            text = "".join(b.text for b in msg.content if b.type == "text")
            parsed, choice = parse_answer(text, request.json_schema, request.choices)
            return text, parsed, choice
        value = tool_use.input
        _, wrapped = _tool_schema(schema)
        if wrapped:
            if not isinstance(value, dict) or "value" not in value:
                raise StructuredError('the tool input lacks its "value" field')
            value = value["value"]
        text = json.dumps(value, ensure_ascii=False)
        if request.choices is not None:
            validate_json(value, schema)  # the enum: the choice is one of request.choices
            return text, None, value[CHOICE_FIELD]
        return text, validate_json(value, schema), None

    def _response(self, text: str, parsed: Any, choice: str | None, usage: Usage, t0: float) -> LLMResponse:
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


def usage_of(u: Any) -> Usage:
    """Anthropic usage as ``Usage`` (input includes cache reads and writes; see the module docstring)."""
    if u is None:
        return Usage()
    read = getattr(u, "cache_read_input_tokens", None) or 0
    write = getattr(u, "cache_creation_input_tokens", None) or 0
    return Usage(
        input_tokens=(u.input_tokens or 0) + read + write,
        cached_input_tokens=read,
        cache_write_input_tokens=write,
        output_tokens=u.output_tokens or 0,
    )
