"""Prices, the cost of an answer from its token usage, and the cost estimate of a stage before it runs.

Prices are USD per million tokens: (input, cached input, output). Sources, as listed on 2025-11-01:

- OpenAI: https://platform.openai.com/docs/pricing (standard tier; cached input = prompt-cache reads;
  cache writes are free).
- Anthropic: https://docs.anthropic.com/en/docs/about-claude/pricing (cached input = cache reads at 0.1x
  input; cache writes with the 5-minute TTL cost 1.25x input).

Override or extend the table with ``LLMConfig.prices`` (model -> (input, cached input, output)). Local models
and self-hosted ``@url`` servers cost 0. A hosted model missing from the table is costed 0 with a warning
(its ``CostEstimate.priced`` is False), never silently.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from persona_lab.llm._types import LLMRequest, Usage

PRICES_AS_OF = "2025-11-01"
"""Date the default price table was read from the providers' pricing pages."""
ANTHROPIC_CACHE_WRITE_FACTOR = 1.25
"""Anthropic bills prompt-cache writes (5-minute TTL) at 1.25x the input price."""
BATCH_DISCOUNT = 0.5
"""OpenAI Batch and Anthropic Message Batches bill 50 % of the standard price."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens.

    Attributes:
        input: Uncached input tokens.
        cached_input: Input tokens read from the provider's prompt cache.
        output: Output tokens.
        cache_write: Input tokens written to the prompt cache (``None``: billed as plain input).
    """

    input: float
    cached_input: float
    output: float
    cache_write: float | None = None

    def scaled(self, factor: float) -> ModelPrice:
        """This price times ``factor`` (e.g. ``BATCH_DISCOUNT``)."""
        cw = None if self.cache_write is None else self.cache_write * factor
        return ModelPrice(self.input * factor, self.cached_input * factor, self.output * factor, cw)


def _anthropic(inp: float, out: float) -> ModelPrice:
    return ModelPrice(inp, round(inp * 0.1, 6), out, round(inp * ANTHROPIC_CACHE_WRITE_FACTOR, 6))


DEFAULT_PRICES: dict[str, ModelPrice] = {
    # OpenAI
    "gpt-4o": ModelPrice(2.50, 1.25, 10.00),
    "gpt-4o-mini": ModelPrice(0.15, 0.075, 0.60),
    "gpt-4.1": ModelPrice(2.00, 0.50, 8.00),
    "gpt-4.1-mini": ModelPrice(0.40, 0.10, 1.60),
    "gpt-4.1-nano": ModelPrice(0.10, 0.025, 0.40),
    "gpt-5": ModelPrice(1.25, 0.125, 10.00),
    "gpt-5-mini": ModelPrice(0.25, 0.025, 2.00),
    "gpt-5-nano": ModelPrice(0.05, 0.005, 0.40),
    "o4-mini": ModelPrice(1.10, 0.275, 4.40),
    "o3": ModelPrice(2.00, 0.50, 8.00),
    # Anthropic
    "claude-opus-4-1": _anthropic(15.00, 75.00),
    "claude-opus-4": _anthropic(15.00, 75.00),
    "claude-sonnet-4-5": _anthropic(3.00, 15.00),
    "claude-sonnet-4": _anthropic(3.00, 15.00),
    "claude-haiku-4-5": _anthropic(1.00, 5.00),
    "claude-3-5-haiku": _anthropic(0.80, 4.00),
}
"""The default price table (see the module docstring for sources and date)."""

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
_warned: set[str] = set()


def price_for(
    model: str, prices: Mapping[str, tuple[float, float, float] | ModelPrice] | None = None
) -> ModelPrice | None:
    """Look up the price of a hosted model, or ``None`` if unknown.

    Overrides in ``prices`` win over the default table. A dated snapshot (``gpt-4o-2024-08-06``,
    ``claude-sonnet-4-5-20250929``) or ``-latest`` alias is priced as its base model.
    """
    table: dict[str, ModelPrice] = dict(DEFAULT_PRICES)
    for name, p in (prices or {}).items():
        table[name] = p if isinstance(p, ModelPrice) else ModelPrice(*p)
    if model in table:
        return table[model]
    base = _SNAPSHOT.sub("", model)
    return table.get(base)


def cost_usd(usage: Usage, price: ModelPrice | None) -> float:
    """Cost of one answer in USD.

    ``usage.input_tokens`` includes cached reads and cache writes, so the uncached remainder is
    ``input - cached - cache_write``; each part is billed at its own price, then output tokens.
    ``price=None`` (local, self-hosted, unknown) costs 0.
    """
    if price is None:
        return 0.0
    plain = max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_write_input_tokens)
    write_price = price.input if price.cache_write is None else price.cache_write
    total = (
        plain * price.input
        + usage.cached_input_tokens * price.cached_input
        + usage.cache_write_input_tokens * write_price
        + usage.output_tokens * price.output
    )
    return total / 1_000_000


def resolve_price(
    provider: str,
    model: str,
    *,
    self_hosted: bool,
    prices: Mapping[str, tuple[float, float, float] | ModelPrice] | None = None,
    warn: bool = True,
) -> ModelPrice | None:
    """The price that applies to a backend: ``None`` for local/self-hosted or unknown hosted models.

    An explicit entry in ``prices`` applies even to a self-hosted model (e.g. a paid gateway).
    An unknown hosted model warns once per process and is costed 0.
    """
    if prices and (model in prices or _SNAPSHOT.sub("", model) in prices):
        return price_for(model, prices)
    if self_hosted or provider == "local":
        return None
    p = price_for(model, prices)
    if p is None and warn and model not in _warned:
        _warned.add(model)
        warnings.warn(
            f"no price known for {provider}:{model}; its cost is reported as 0. "
            "Add it to LLMConfig.prices as model = [input, cached_input, output] USD per million tokens.",
            stacklevel=3,
        )
    return p


def estimate_tokens(text: str) -> int:
    """Estimate the tokens of a text: tiktoken's ``o200k_base`` when installed, else ceil(chars / 4)."""
    enc = _encoder()
    if enc is not None:
        return len(enc.encode(text))
    return math.ceil(len(text) / 4)


_ENCODER: object | None = None
_ENCODER_TRIED = False


def _encoder():  # type: ignore[no-untyped-def]
    global _ENCODER, _ENCODER_TRIED
    if not _ENCODER_TRIED:
        _ENCODER_TRIED = True
        try:
            import tiktoken

            _ENCODER = tiktoken.get_encoding("o200k_base")
        except Exception:  # noqa: BLE001 - tiktoken is optional and may lack its encoding file offline
            _ENCODER = None
    return _ENCODER


MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat format adds per message (role markers); OpenAI's cookbook counts 3-4."""


def request_input_tokens(request: LLMRequest) -> int:
    """Estimated prompt tokens of a request: its messages (plus per-message overhead) and JSON schema."""
    n = sum(estimate_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in request.messages)
    if request.json_schema is not None:
        import json

        n += estimate_tokens(json.dumps(request.json_schema))
    if request.choices:
        n += estimate_tokens(" ".join(request.choices)) + MESSAGE_OVERHEAD_TOKENS
    return n


@dataclass(frozen=True)
class CostEstimate:
    """An upper-bound cost estimate of a stage before it runs.

    Attributes:
        model: The model priced.
        calls: Number of requests.
        input_tokens: Estimated prompt tokens (tiktoken if installed, else characters / 4).
        output_tokens: Upper bound: the sum of ``max_tokens``.
        usd: Estimated USD at the standard price (0 when not priced).
        priced: False when the model has no price (local, self-hosted or unknown); then ``usd`` is 0.
        note: How the estimate was made.
    """

    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    usd: float
    priced: bool
    note: str

    def __str__(self) -> str:
        cost = f"${self.usd:,.4f}" if self.priced else "n/a (no price)"
        return (
            f"{self.calls:,} calls to {self.model}: ~{self.input_tokens:,} input tokens, "
            f"<= {self.output_tokens:,} output tokens, <= {cost}"
        )


def estimate_cost(
    requests: Iterable[LLMRequest],
    model: str,
    *,
    prices: Mapping[str, tuple[float, float, float] | ModelPrice] | None = None,
    batch: bool = False,
) -> CostEstimate:
    """Estimate the cost of sending ``requests`` to ``model`` (an upper bound on output).

    Args:
        requests: The stage's requests.
        model: A model name (``gpt-4o``) or a backend spec (``openai:gpt-4o``, ``local``).
        prices: Overrides of the price table (``LLMConfig.prices``).
        batch: Price at the batch APIs' 50 % discount.

    Returns:
        Calls, estimated input tokens (no prompt-cache discount assumed), output tokens bounded by each
        request's ``max_tokens``, and USD.
    """
    from persona_lab.llm._spec import PROVIDERS, parse_spec

    provider, name, self_hosted = "", model, False
    if model.partition(":")[0] in PROVIDERS:
        parsed = parse_spec(model)
        provider, name, self_hosted = parsed.provider, parsed.model or "local", parsed.self_hosted
    reqs: Sequence[LLMRequest] = list(requests)
    inp = sum(request_input_tokens(r) for r in reqs)
    out = sum(r.max_tokens for r in reqs)
    price = resolve_price(provider, name, self_hosted=self_hosted, prices=prices, warn=False)
    if price is not None and batch:
        price = price.scaled(BATCH_DISCOUNT)
    usd = cost_usd(Usage(input_tokens=inp, output_tokens=out), price)
    how = "tiktoken o200k_base" if _encoder() is not None else "characters / 4"
    note = f"input tokens by {how}; output = sum of max_tokens (upper bound)"
    if price is None:
        note += "; no price: local/self-hosted models cost 0, unknown hosted models need LLMConfig.prices"
    elif batch:
        note += "; batch price (50 %)"
    return CostEstimate(name, len(reqs), inp, out, usd, price is not None, note)
