"""A client-side limiter for requests and tokens per minute, shared by all calls of a run.

Token buckets, not a sliding window: a bucket refills continuously, so a run
settles at exactly the configured rate without the start-of-window bursts a
sliding or fixed window allows, and a small bucket (about one second's worth by
default) keeps the traffic smooth, which is how providers enforce "per minute"
limits in practice (over shorter intervals). Tokens are estimated before a call
and corrected afterwards with the usage the provider reports.

A 429 carrying a wait (``retry_after``) pauses every caller: :meth:`RateLimiter.pause`
sets a shared "not before" time that :meth:`RateLimiter.acquire` honours.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from pydantic import BaseModel

from mike_sdk.backend import GenerationRequest, LikelihoodRequest

CHARS_PER_TOKEN = 4
"""Rough characters per token for estimates (English-like text; an estimate only)."""


def estimate_input_tokens(request: BaseModel) -> int:
    """Prompt tokens of a request, estimated as ``ceil(characters / 4)``."""
    if isinstance(request, GenerationRequest):
        if request.prompt is not None:
            chars = len(request.prompt)
        else:
            chars = sum(len(m.content) for m in request.messages or ())
        return math.ceil(chars / CHARS_PER_TOKEN)
    if isinstance(request, LikelihoodRequest):
        return math.ceil((len(request.context) + len(request.continuation)) / CHARS_PER_TOKEN)
    return 0


def estimate_tokens(request: BaseModel, hidden_output: int = 0) -> int:
    """Tokens a call may use: estimated prompt tokens plus ``max_new_tokens`` and any hidden
    reasoning budget (an upper bound on the output), the figure a tokens-per-minute budget
    is charged before the call."""
    extra = (request.max_new_tokens + hidden_output
             if isinstance(request, GenerationRequest) else 0)
    return estimate_input_tokens(request) + extra


class TokenBucket:
    """``rate`` units per second, at most ``capacity`` saved up; the level may go negative
    (a debt) so that a single cost larger than the capacity still passes when the bucket
    is full instead of blocking forever."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self.level = capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, cost: float) -> float:
        """Seconds until ``cost`` (capped at the capacity) is available; 0 if now."""
        self._refill()
        missing = min(cost, self.capacity) - self.level
        return max(0.0, missing / self.rate)

    def take(self, cost: float) -> None:
        """Spend ``cost`` (after :meth:`wait_time` returned 0)."""
        self._refill()
        self.level -= cost

    def give_back(self, amount: float) -> None:
        """Return (or, when negative, charge more of) the budget, e.g. after real usage."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """Requests per minute and tokens per minute for one backend, plus a shared pause.

    >>> limiter = RateLimiter(rpm=600, tpm=100_000)
    >>> # await limiter.acquire(estimate_tokens(request)); ...call...; limiter.settle(est, real)
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None, *,
                 burst_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # One second's worth of budget by default: smooth traffic, yet one slow scheduler tick
        # does not cost throughput. At least one request always fits.
        self.requests = (TokenBucket(rpm / 60, max(1.0, rpm / 60 * burst_s), clock)
                         if rpm else None)
        self.tokens = TokenBucket(tpm / 60, max(1.0, tpm / 60 * burst_s), clock) if tpm else None
        self.not_before = 0.0
        """Clock time before which nobody may start a call (set by :meth:`pause`)."""
        self.waited_s = 0.0
        """Total seconds callers spent waiting here."""
        # One waiter at a time: callers are served in arrival order, none starves.
        self._lock = asyncio.Lock()

    async def acquire(self, estimated_tokens: int = 0) -> None:
        """Wait until one request of ``estimated_tokens`` tokens may start, then spend it."""
        async with self._lock:
            while True:
                delay = self.not_before - self._clock()
                if self.requests is not None:
                    delay = max(delay, self.requests.wait_time(1))
                if self.tokens is not None:
                    delay = max(delay, self.tokens.wait_time(estimated_tokens))
                if delay <= 0:
                    break
                self.waited_s += delay
                await asyncio.sleep(delay)
            if self.requests is not None:
                self.requests.take(1)
            if self.tokens is not None:
                self.tokens.take(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int | None) -> None:
        """Correct the token budget once the real usage is known (``None``: keep the estimate)."""
        if self.tokens is not None and actual_tokens is not None:
            self.tokens.give_back(estimated_tokens - actual_tokens)

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (a 429 said to wait)."""
        self.not_before = max(self.not_before, self._clock() + max(0.0, seconds))
