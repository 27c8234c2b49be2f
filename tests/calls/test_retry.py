"""The retry layer with real async functions that fail a given number of times."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from mike_sdk.calls.failures import AuthFailed, BadRequest, ModelNotFound, RateLimited, Transient
from mike_sdk.calls.retry import RetryPolicy, RetryStats, as_failure, call_with_retry

FAST = RetryPolicy(max_attempts=6, base_wait_s=0.001, max_wait_s=0.01, deadline_s=10)


class Flaky:
    """Fails ``times`` times with the given exceptions, then answers."""

    def __init__(self, times: int, error: BaseException) -> None:
        self.times = times
        self.error = error
        self.attempts = 0
        self.stamps: list[float] = []

    async def __call__(self) -> str:
        self.attempts += 1
        self.stamps.append(time.perf_counter())
        await asyncio.sleep(0)
        if self.attempts <= self.times:
            raise self.error
        return "ok"


def run(fn: Flaky, policy: RetryPolicy = FAST, stats: RetryStats | None = None) -> str:
    return asyncio.run(call_with_retry(fn, policy, stats=stats))


@pytest.mark.parametrize("error", [Transient("503"), RateLimited("429"),
                                   asyncio.TimeoutError(), httpx.ReadTimeout("slow"),
                                   httpx.RemoteProtocolError("dropped"),
                                   httpx.ConnectError("refused"), ConnectionResetError()])
def test_retryable_failures_are_retried_until_success(error: BaseException) -> None:
    fn, stats = Flaky(3, error), RetryStats()
    assert run(fn, stats=stats) == "ok"
    assert fn.attempts == 4 and stats.retries == 3


@pytest.mark.parametrize("error", [BadRequest("400"), AuthFailed("401"), ModelNotFound("404")])
def test_final_failures_are_never_retried(error: BaseException) -> None:
    fn = Flaky(1, error)
    with pytest.raises(type(error)):
        run(fn)
    assert fn.attempts == 1


def test_other_exceptions_propagate_unchanged() -> None:
    fn = Flaky(1, ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        run(fn)
    assert fn.attempts == 1


def test_wait_is_at_least_retry_after() -> None:
    fn, stats = Flaky(2, RateLimited("429", retry_after=0.15)), RetryStats()
    assert run(fn, stats=stats) == "ok"
    gaps = [b - a for a, b in zip(fn.stamps, fn.stamps[1:], strict=False)]
    assert all(gap >= 0.15 for gap in gaps)
    assert stats.rate_limited == 2


def test_max_attempts_reraises_the_last_failure() -> None:
    fn = Flaky(100, Transient("500"))
    with pytest.raises(Transient, match="500"):
        run(fn, FAST.model_copy(update={"max_attempts": 3}))
    assert fn.attempts == 3


def test_timeouts_escape_as_transient() -> None:
    fn = Flaky(100, httpx.ReadTimeout("slow"))
    with pytest.raises(Transient, match="Timed out"):
        run(fn, FAST.model_copy(update={"max_attempts": 2}))
    assert isinstance(as_failure(TimeoutError()), Transient)
    assert as_failure(FileNotFoundError()) is None


def test_deadline_stops_before_a_wait_would_cross_it() -> None:
    policy = RetryPolicy(max_attempts=100, base_wait_s=0.1, max_wait_s=0.1, deadline_s=0.35)
    fn = Flaky(100, Transient("503"))
    started = time.perf_counter()
    with pytest.raises(Transient):
        run(fn, policy)
    # No wait may end past the deadline (slack for a loaded machine's scheduling).
    assert time.perf_counter() - started < 0.35 + 0.15
    assert 3 <= fn.attempts <= 8  # waits of 0.05-0.1 s (jittered) within 0.35 s


def test_retry_after_past_the_deadline_gives_up_at_once() -> None:
    fn = Flaky(100, RateLimited("429", retry_after=30))
    started = time.perf_counter()
    with pytest.raises(RateLimited):
        run(fn, FAST.model_copy(update={"deadline_s": 1}))
    assert fn.attempts == 1 and time.perf_counter() - started < 0.5
