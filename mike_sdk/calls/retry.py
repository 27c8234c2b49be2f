"""The one retry layer: rate limits and transient failures are retried, final ones are not.

Built on tenacity. Waits are jittered exponential backoff (``base_wait_s`` doubling up
to ``max_wait_s``) but never shorter than the ``retry_after`` a failure carries; the
whole thing stops at ``max_attempts`` or when the next wait would cross the
``deadline_s`` counted from the first attempt, re-raising the last failure.
Timeouts and dropped connections that escape a backend count as :class:`Transient`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from mike_sdk.calls.failures import CallFailed, RateLimited, TimedOut, Transient, Unreachable

T = TypeVar("T")
log = logging.getLogger(__name__)
#: Unreachable-server messages already logged as warnings in this process.
_WARNED: set[str] = set()


class RetryPolicy(BaseModel):
    """How often and how long to retry one call."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=8, ge=1)
    """Attempts in all, the first included."""
    base_wait_s: float = Field(default=1.0, ge=0)
    """Backoff before the second attempt (before jitter); doubles each time."""
    max_wait_s: float = Field(default=60.0, ge=0)
    """Longest backoff between attempts (a longer ``retry_after`` still wins)."""
    deadline_s: float = Field(default=600.0, gt=0)
    """Give up when the next wait would end later than this after the first attempt."""


def as_failure(exc: BaseException) -> CallFailed | None:
    """The :class:`CallFailed` an exception stands for: itself, a :class:`Transient` for
    timeouts and connection errors, or ``None`` (a bug or a local error: not retried)."""
    if isinstance(exc, CallFailed):
        return exc
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError | TimeoutError):
        return TimedOut(f"Timed out: {type(exc).__name__}")
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | ConnectionError):
        return Transient(f"Connection failed: {type(exc).__name__}")
    return None


class RetryStats:
    """Counters of one session, for the summary."""

    def __init__(self) -> None:
        self.retries = 0
        """Attempts after the first."""
        self.rate_limited = 0
        """429s received."""
        self.transient = 0
        """Transient failures received (5xx, timeouts, dropped connections)."""


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    # "Full jitter" keeps many callers that failed together from retrying together.
    ceiling = min(policy.max_wait_s, policy.base_wait_s * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


async def call_with_retry(fn: Callable[[], Awaitable[T]], policy: RetryPolicy, *,
                          stats: RetryStats | None = None,
                          on_failure: Callable[[CallFailed], None] | None = None,
                          give_up: Callable[[CallFailed, int], bool] | None = None) -> T:
    """``await fn()``, retried under ``policy``; raises the last :class:`CallFailed`.

    ``on_failure`` sees every retryable failure before the wait (the rate limiter
    uses it to pause everyone on a 429 with ``retry_after``); ``give_up(failure,
    attempts)`` may end the retries sooner than the policy would. Each retry is logged
    (connection failures as warnings: they name the server).
    """

    def wait(state: RetryCallState) -> float:
        failure = _failure(state)
        floor = failure.retry_after if failure is not None and failure.retry_after else 0.0
        return max(floor, _backoff(policy, state.attempt_number))

    def stop(state: RetryCallState) -> bool:
        elapsed = state.seconds_since_start or 0.0
        failure = _failure(state)
        if give_up is not None and failure is not None \
                and give_up(failure, state.attempt_number):
            return True
        return (state.attempt_number >= policy.max_attempts
                or elapsed + state.upcoming_sleep > policy.deadline_s)

    def before_sleep(state: RetryCallState) -> None:
        if stats is not None:
            stats.retries += 1
        failure = _failure(state)
        if failure is not None:
            # A server that cannot be reached is named once, not once per request in
            # flight and attempt (the run's error line says it again if it stays down);
            # a server that does not answer in time is named at each retry (no silence).
            first = isinstance(failure, Unreachable) and str(failure) not in _WARNED
            _WARNED.add(str(failure))
            level = logging.WARNING if first or isinstance(failure, TimedOut) else logging.INFO
            log.log(level, "%s (attempt %d of %d; next in %.1f s)", failure,
                    state.attempt_number, policy.max_attempts, state.upcoming_sleep)

    def retryable(exc: BaseException) -> bool:
        failure = as_failure(exc)
        if failure is None or not failure.retryable:
            return False
        if stats is not None:
            if isinstance(failure, RateLimited):
                stats.rate_limited += 1
            else:
                stats.transient += 1
        if on_failure is not None:
            on_failure(failure)
        return True

    async def attempt() -> T:
        try:
            return await fn()
        except CallFailed:
            raise
        except Exception as exc:
            failure = as_failure(exc)
            if failure is None:
                raise
            raise failure from exc

    retrying = AsyncRetrying(retry=retry_if_exception(retryable), wait=wait, stop=stop,
                             before_sleep=before_sleep, reraise=True)
    return await retrying(attempt)


def _failure(state: RetryCallState) -> CallFailed | None:
    outcome = state.outcome
    if outcome is None or not outcome.failed:
        return None
    exc = outcome.exception()
    return as_failure(exc) if exc is not None else None
