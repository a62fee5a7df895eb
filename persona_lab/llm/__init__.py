"""One way to call any LLM: backends, the response cache, the async runner, batch APIs and cost."""

from persona_lab.llm._types import (
    Backend,
    LLMError,
    LLMFailure,
    LLMRequest,
    LLMResponse,
    Message,
    Usage,
)

__all__ = ["Backend", "LLMError", "LLMFailure", "LLMRequest", "LLMResponse", "Message", "Usage"]
