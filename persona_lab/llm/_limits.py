"""Retries and client-side limits: exponential backoff with jitter, token buckets, concurrency per backend."""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from persona_lab.errors import PersonaLabError

if TYPE_CHECKING:
    from persona_lab.config import LLMConfig


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures.

    The n-th retry waits ``min(max_delay_s, base_delay_s * 2**(n-1))`` times a uniform factor in
    ``[0.5, 1]`` ("equal jitter"), and at least the server's ``Retry-After`` (capped at
    ``max_retry_after_s``). Tests use tiny delays.
    """

    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 600.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1)) * rng.uniform(0.5, 1.0)
        if retry_after is not None:
            return max(backoff, min(retry_after, self.max_retry_after_s))
        return backoff


class RateLimiter:
    """A token bucket refilled at ``per_minute / 60`` per second, holding at most one second's worth.

    ``acquire(n)`` takes ``n`` units at once and then sleeps until the bucket is out of debt, so a request
    larger than the bucket still goes through and the long-run rate never exceeds ``per_minute``.
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise PersonaLabError(f"rate limit must be positive, got {per_minute} per minute")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    async def acquire(self, n: float = 1.0) -> float:
        """Take ``n`` units; returns the seconds waited."""
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._last) * self.rate)
        self._last = now
        self.level -= n
        wait = -self.level / self.rate if self.level < 0 else 0.0
        if wait > 0:
            await self._sleep(wait)
        return wait


@dataclass
class Limits:
    """The limits of one backend: calls in flight, requests and tokens per minute."""

    semaphore: asyncio.Semaphore
    rpm: RateLimiter | None
    tpm: RateLimiter | None


_LIMITS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int, int | None, int | None], Limits]
]
_LIMITS = weakref.WeakKeyDictionary()


def limits_for(spec: str, cfg: LLMConfig) -> Limits:
    """The concurrency and rate limits shared by every stage running on one backend in this event loop."""
    loop = asyncio.get_running_loop()
    per_loop = _LIMITS.setdefault(loop, {})
    k = (spec, cfg.concurrency, cfg.requests_per_minute, cfg.tokens_per_minute)
    if k not in per_loop:
        per_loop[k] = Limits(
            asyncio.Semaphore(max(1, cfg.concurrency)),
            RateLimiter(cfg.requests_per_minute) if cfg.requests_per_minute else None,
            RateLimiter(cfg.tokens_per_minute) if cfg.tokens_per_minute else None,
        )
    return per_loop[k]
