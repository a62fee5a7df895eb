"""One way to call any LLM: backends, the response cache, the async runner, batch APIs and cost."""

from persona_lab.llm._batch import batch_jobs, run_batch
from persona_lab.llm._cache import CACHE_FILENAME, ResponseCache, request_key
from persona_lab.llm._cost import DEFAULT_PRICES, CostEstimate, ModelPrice, cost_usd, estimate_cost, price_for
from persona_lab.llm._local import LocalBackend
from persona_lab.llm._runner import (
    RateLimiter,
    RetryPolicy,
    RunStats,
    RunSummary,
    arun_requests,
    run_requests,
    summarize,
)
from persona_lab.llm._spec import BackendSpec, get_backend, parse_spec
from persona_lab.llm._types import (
    Backend,
    LLMError,
    LLMFailure,
    LLMRequest,
    LLMResponse,
    Message,
    Usage,
)

__all__ = [
    "CACHE_FILENAME",
    "DEFAULT_PRICES",
    "Backend",
    "BackendSpec",
    "CostEstimate",
    "LLMError",
    "LLMFailure",
    "LLMRequest",
    "LLMResponse",
    "LocalBackend",
    "Message",
    "ModelPrice",
    "RateLimiter",
    "RetryPolicy",
    "RunStats",
    "RunSummary",
    "ResponseCache",
    "Usage",
    "cost_usd",
    "estimate_cost",
    "get_backend",
    "parse_spec",
    "price_for",
    "request_key",
    "arun_requests",
    "batch_jobs",
    "run_batch",
    "run_requests",
    "summarize",
]
