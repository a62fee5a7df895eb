"""The one LLM interface every stage uses: a chat request in, a response (or a recorded failure) out."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)
    role: Role
    content: str


class LLMRequest(BaseModel):
    """Everything that determines an answer. Its hash (see ``request_key``) is the cache key."""

    model_config = ConfigDict(frozen=True)
    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int = 0
    json_schema: dict[str, Any] | None = None
    """JSON schema the answer must satisfy (usually ``SomeModel.model_json_schema()``)."""
    choices: tuple[str, ...] | None = None
    """Closed set of answers (e.g. ``("A", "B")``); the response's ``choice`` is one of them."""
    sample_index: int = 0
    """Distinguishes repeated samples of the same request (pass@k), part of the cache key."""
    tag: str = Field(default="", exclude=True)
    """Caller's label (e.g. ``persona_id/prompt_id``); for ordering and progress only, not in the key."""

    @classmethod
    def chat(cls, user: str, system: str | None = None, **kw: Any) -> LLMRequest:
        msgs = ([Message(role="system", content=system)] if system else []) + [
            Message(role="user", content=user)
        ]
        return cls(messages=tuple(msgs), **kw)


class Usage(BaseModel):
    """Token usage of one answer (including any repair call).

    ``input_tokens`` counts every prompt token, including the ``cached_input_tokens`` read from the provider's
    prompt cache and the ``cache_write_input_tokens`` written to it (Anthropic bills writes at 1.25x input).
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0


class LLMResponse(BaseModel):
    """A successful answer."""

    text: str
    parsed: Any | None = None
    """The validated JSON object when the request had a ``json_schema``."""
    choice: str | None = None
    """One of the request's ``choices`` when it had them."""
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    backend: str = ""
    model: str = ""
    cached: bool = False
    """True when replayed from the response cache (no call was made)."""
    key: str = ""
    """The request's cache key."""


FailureKind = Literal[
    "rate_limit",
    "server",
    "timeout",
    "connection",
    "auth",
    "invalid_request",
    "refusal",
    "unparseable",
    "other",
    "not_attempted",
]
"""Why a request has no answer. ``not_attempted``: the stage stopped before sending it (its backend was
down, see ``BackendUnavailable``); it is sent again on the next run, whatever ``LLMConfig.retry_failures``."""


class LLMFailure(BaseModel):
    """A call that still failed after retries; recorded in the cache's failures table, never dropped.

    A rerun replays a recorded failure as it is (``cached=True``, no call) unless ``LLMConfig.retry_failures``
    is set; ``not_attempted`` items are always sent again.
    """

    key: str
    kind: FailureKind
    reason: str
    backend: str = ""
    model: str = ""
    attempts: int = 1
    tag: str = ""
    cached: bool = False
    """True when replayed from the response cache's failures table (no call was made)."""


@runtime_checkable
class Backend(Protocol):
    """A chat backend. ``spec`` is the configuration string that names it (e.g. ``openai:gpt-4o``)."""

    spec: str
    model: str

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer one request, or raise ``LLMError`` with a ``kind``."""
        ...


class LLMError(Exception):
    """A classified backend error; the runner retries transient kinds and records the rest."""

    def __init__(self, kind: FailureKind, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind: FailureKind = kind
        self.reason = reason
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.kind in ("rate_limit", "server", "timeout", "connection")
