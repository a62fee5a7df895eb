"""One way to call any LLM: backends, the response cache, the async runner, batch APIs and cost."""

from persona_lab.llm._batch import batch_jobs, run_batch
from persona_lab.llm._cache import CACHE_FILENAME, ResponseCache, request_key
from persona_lab.llm._cost import (
    DEFAULT_PRICES,
    CostEstimate,
    ModelPrice,
    cost_usd,
    estimate_cost,
    estimate_tokens,
    price_for,
)
from persona_lab.llm._degenerate import (
    DEGENERATE,
    degenerate_failure,
    degenerate_fields,
    degenerate_items,
    degenerate_reason,
)
from persona_lab.llm._limits import RateLimiter, RetryPolicy
from persona_lab.llm._local import LocalBackend
from persona_lab.llm._progress import RunStats, RunSummary, summarize
from persona_lab.llm._runner import BackendUnavailable, arun_requests, run_requests
from persona_lab.llm._spec import BackendSpec, check_backend, get_backend, parse_spec
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
    "BackendUnavailable",
    "CostEstimate",
    "DEGENERATE",
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
    "check_backend",
    "cost_usd",
    "degenerate_failure",
    "degenerate_fields",
    "degenerate_items",
    "degenerate_reason",
    "estimate_cost",
    "estimate_tokens",
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
