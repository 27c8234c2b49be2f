"""The client-side rate limiter: requests and tokens per minute, and the shared pause."""

from __future__ import annotations

import asyncio
import time

import pytest

from mike_sdk.backend import ChatMessage, GenerationRequest, LikelihoodRequest
from mike_sdk.calls.ratelimit import (
    RateLimiter,
    TokenBucket,
    estimate_input_tokens,
    estimate_tokens,
)


def test_estimate_is_characters_over_four_rounded_up_plus_max_new_tokens() -> None:
    assert estimate_tokens(GenerationRequest(prompt="x" * 10, max_new_tokens=15)) == 3 + 15
    chat = GenerationRequest(messages=(ChatMessage(role="system", content="abcd"),
                                       ChatMessage(role="user", content="e")), max_new_tokens=2)
    assert estimate_input_tokens(chat) == 2 and estimate_tokens(chat) == 4
    assert estimate_tokens(LikelihoodRequest(context="abcd", continuation="efgh")) == 2


def test_bucket_refills_continuously_and_allows_debt() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, capacity=5, clock=lambda: now[0])
    assert bucket.wait_time(5) == 0
    bucket.take(5)
    assert bucket.wait_time(1) == pytest.approx(0.1)
    now[0] = 0.3
    assert bucket.wait_time(3) == 0
    # A cost above the capacity passes on a full bucket and leaves a debt.
    now[0] = 10.0
    assert bucket.wait_time(50) == 0
    bucket.take(50)
    assert bucket.wait_time(1) == pytest.approx(4.6)
    bucket.give_back(100)
    assert bucket.level == 5


def test_requests_per_minute_sustains_the_rate() -> None:
    async def main() -> float:
        limiter = RateLimiter(rpm=1200)  # 20/s, one second of burst
        started = time.perf_counter()
        await asyncio.gather(*(limiter.acquire() for _ in range(40)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    assert 0.9 <= elapsed < 1.5


def test_tokens_per_minute_waits_and_settle_gives_back() -> None:
    async def main() -> tuple[float, float]:
        limiter = RateLimiter(tpm=6000)  # 100 tokens/s, 100 saved up
        await limiter.acquire(100)
        started = time.perf_counter()
        await limiter.acquire(50)  # must wait ~0.5 s
        waited = time.perf_counter() - started
        limiter.settle(50, 0)  # the call used nothing: refund
        limiter.settle(100, 0)
        started = time.perf_counter()
        await limiter.acquire(100)
        return waited, time.perf_counter() - started

    waited, after_refund = asyncio.run(main())
    assert 0.4 <= waited < 0.8
    assert after_refund < 0.1


def test_pause_holds_every_caller_back() -> None:
    async def main() -> list[float]:
        limiter = RateLimiter(rpm=60_000)
        started = time.perf_counter()
        limiter.pause(0.3)

        async def one() -> float:
            await limiter.acquire(1)
            return time.perf_counter() - started

        return list(await asyncio.gather(one(), one(), one()))

    assert all(t >= 0.3 for t in asyncio.run(main()))
