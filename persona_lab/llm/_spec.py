"""Backend specs: one string names a backend; ``get_backend`` builds it.

Grammar (``provider[:model][@base_url]``):

- ``local``: llama.cpp with the embedded SmolLM2-135M-Instruct; ``local:/path/to/model.gguf`` another GGUF;
- ``openai:MODEL``: the OpenAI API (key from ``OPENAI_API_KEY``);
- ``openai:MODEL@http://host:port/v1``: any OpenAI-compatible server (vLLM, Ollama, llama.cpp server,
  gateways); the key is ``OPENAI_API_KEY`` when set, otherwise ``"not-needed"``;
- ``anthropic:MODEL``: the Anthropic API (key from ``ANTHROPIC_API_KEY``); ``@base_url`` works as for openai.

Providers are imported lazily, so a missing optional dependency only matters for the backend that needs it.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from persona_lab.errors import PersonaLabError

if TYPE_CHECKING:
    from persona_lab.config import LLMConfig
    from persona_lab.llm._types import Backend

Provider = Literal["local", "openai", "anthropic"]
PROVIDERS: tuple[Provider, ...] = ("local", "openai", "anthropic")

API_KEY_ENV: dict[str, str] = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
"""Environment variable holding each hosted provider's API key (keys are read from the environment only)."""
NO_KEY = "not-needed"
"""API key sent to self-hosted compatible servers when no key is set."""


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend spec.

    Attributes:
        spec: The original string (part of every cache key).
        provider: ``local``, ``openai`` or ``anthropic``.
        model: The model name (for ``local``: the GGUF path, or ``""`` for the embedded default).
        base_url: The server of an OpenAI/Anthropic-compatible endpoint, or ``None`` for the provider's API.
    """

    spec: str
    provider: Provider
    model: str
    base_url: str | None = None

    @property
    def self_hosted(self) -> bool:
        """True for ``local`` and ``@base_url`` backends: no price table applies, cost is 0."""
        return self.provider == "local" or self.base_url is not None


def parse_spec(spec: str) -> BackendSpec:
    """Parse a backend spec string.

    Raises:
        PersonaLabError: naming the spec and the accepted forms when it is malformed.
    """
    forms = "local, local:/path.gguf, openai:MODEL, anthropic:MODEL, openai:MODEL@http://HOST:PORT/v1"
    text = spec.strip()
    provider, sep, rest = text.partition(":")
    if provider not in PROVIDERS:
        raise PersonaLabError(f"backend spec {spec!r}: unknown provider {provider!r}; use one of: {forms}")
    if provider == "local":
        return BackendSpec(spec=text, provider="local", model=rest)
    if not sep or not rest:
        raise PersonaLabError(
            f"backend spec {spec!r}: missing model name after '{provider}:'; use one of: {forms}"
        )
    model, base_url = rest, None
    at = rest.rfind("@")
    if at >= 0 and rest[at + 1 :].startswith(("http://", "https://")):
        model, base_url = rest[:at], rest[at + 1 :].rstrip("/")
    elif at >= 0 and "://" in rest[at + 1 :]:
        raise PersonaLabError(f"backend spec {spec!r}: the server URL must start with http:// or https://")
    if not model:
        raise PersonaLabError(f"backend spec {spec!r}: missing model name before '@'; use one of: {forms}")
    return BackendSpec(spec=text, provider=provider, model=model, base_url=base_url)  # type: ignore[arg-type]


def api_key(parsed: BackendSpec) -> str:
    """Read the API key of a hosted backend from the environment.

    Raises:
        PersonaLabError: naming the environment variable when a hosted API has no key.
    """
    var = API_KEY_ENV[parsed.provider]
    key = os.environ.get(var, "").strip()
    if key:
        return key
    if parsed.base_url is not None:
        return NO_KEY
    raise PersonaLabError(
        f"backend {parsed.spec!r}: the environment variable {var} is not set; export {var}=... "
        "(keys are read from the environment only) or choose another backend, e.g. 'local'"
    )


def check_backend(spec: str) -> None:
    """Check that a backend spec can work, before a run starts: no network call, no model loaded.

    Checks the spec's form and provider, the API key of a hosted API (``OPENAI_API_KEY``,
    ``ANTHROPIC_API_KEY``; a server named with ``@url`` needs none), and that the provider's package is
    installed; for ``local``, that llama-cpp-python is installed and the GGUF file exists.

    Raises:
        PersonaLabError: naming the spec and what to do.
    """
    parsed = parse_spec(spec)
    if parsed.provider == "local":
        from persona_lab.llm._local import check_local

        check_local(parsed.model or None)
        return
    api_key(parsed)
    if importlib.util.find_spec(parsed.provider) is None:  # pragma: no cover - both are core dependencies
        raise PersonaLabError(
            f"backend {parsed.spec!r} needs the {parsed.provider} package: pip install {parsed.provider}"
        )


def get_backend(spec: str, *, config: LLMConfig | None = None, http_client: Any = None) -> Backend:
    """Build the backend a spec names.

    Args:
        spec: A backend spec (see the module docstring), e.g. ``openai:gpt-4o``.
        config: Timeouts and other client settings; defaults to ``LLMConfig()``.
        http_client: An ``httpx2.AsyncClient`` passed to the provider SDK (tests use a ``MockTransport``).

    Returns:
        An object implementing the ``Backend`` protocol.

    Raises:
        PersonaLabError: for a malformed spec, a missing API key or a missing optional dependency.
    """
    from persona_lab.config import LLMConfig

    cfg = config or LLMConfig()
    parsed = parse_spec(spec)
    if parsed.provider == "local":
        try:
            from persona_lab.llm._local import LocalBackend
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise PersonaLabError(
                f"backend 'local' is unavailable ({exc}); install the local extra: pip install 'persona-lab[local]'"
            ) from exc
        return LocalBackend(parsed.model or None, spec=parsed.spec)
    if parsed.provider == "openai":
        from persona_lab.llm._openai import OpenAIBackend

        return OpenAIBackend(parsed, api_key=api_key(parsed), config=cfg, http_client=http_client)
    from persona_lab.llm._anthropic import AnthropicBackend

    return AnthropicBackend(parsed, api_key=api_key(parsed), config=cfg, http_client=http_client)
