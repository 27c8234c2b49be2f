"""The shared machinery around every backend call: rate limits, retries, usage and cost.

:class:`Limits` is what a user configures; :class:`CallGuard` applies it to one
run. For each call: check the cost budget, wait for the rate limiter, call, correct
the token budget with the real usage, and count the cost; all of it under the one
retry layer. Backends only translate their errors into :mod:`mike_sdk.calls.failures`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from mike_sdk.backend import Generation, GenerationRequest, LikelihoodRequest
from mike_sdk.calls.failures import CallFailed, RateLimited, Unreachable
from mike_sdk.calls.pricing import PriceTable
from mike_sdk.calls.ratelimit import RateLimiter, estimate_tokens
from mike_sdk.calls.retry import RetryPolicy, RetryStats, call_with_retry

Q = TypeVar("Q", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


class Limits(BaseModel):
    """Rate limits, retries and spending limits for one run."""

    model_config = ConfigDict(frozen=True)

    rpm: float | None = Field(default=None, gt=0)
    """Requests per minute the account allows (None: no request limit)."""
    tpm: float | None = Field(default=None, gt=0)
    """Tokens per minute (input plus output) the account allows (None: no token limit)."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """Calls in flight at once, overriding the backend's own ``max_concurrency``."""
    retry: RetryPolicy = RetryPolicy()
    """Attempts, backoff and the overall deadline of each call."""
    max_cost: float | None = Field(default=None, ge=0)
    """USD this session may spend; no call starts that could cross it (None: no limit)."""
    prices: Path | None = None
    """Price file overriding the shipped defaults (None: ``$MIKE_PRICES`` or defaults only)."""


#: Attempts before a server never reached yet counts as down (about 3 s of backoff).
UNREACHABLE_ATTEMPTS = 3
#: Tokens a chat template may add per message and per request (roles, separators).
TEMPLATE_TOKENS = 8


def max_input_tokens(request: BaseModel) -> int:
    """An upper bound on a request's prompt tokens: its UTF-8 bytes (a byte-level BPE or
    byte-fallback token covers at least one byte) plus the chat template's tokens.
    ``characters / 4`` is no bound: non-Latin text runs at two or three bytes, and
    often more than one token, per character.

    >>> max_input_tokens(GenerationRequest(prompt="日本"))  # 6 bytes, 16 template tokens
    22
    """
    if isinstance(request, GenerationRequest):
        texts = [request.prompt] if request.prompt is not None else [
            m.content for m in request.messages or ()]
    elif isinstance(request, LikelihoodRequest):
        texts = [request.context, request.continuation]
    else:
        return 0
    return sum(len(t.encode("utf-8")) + TEMPLATE_TOKENS for t in texts) + TEMPLATE_TOKENS


class BudgetReached(CallFailed):
    """The next call could cross ``max_cost``: it is not sent, nor any after it."""


class Halted(Exception):
    """The client stopped between two attempts of a call: the next one is not sent."""


class CallGuard:
    """Applies :class:`Limits` to the calls of one session and counts what they cost."""

    def __init__(self, limits: Limits, model: str, *, hidden_output: int = 0) -> None:
        self.limits = limits
        self.model = model
        self.hidden_output = hidden_output
        """Output tokens a request may spend beyond its ``max_new_tokens`` (a reasoning
        model's budget): part of every upper bound."""
        self.prices = PriceTable.load(limits.prices)
        self.limiter = RateLimiter(limits.rpm, limits.tpm) if limits.rpm or limits.tpm else None
        self.stats = RetryStats()
        self.spent = 0.0
        """USD spent by finished calls (known prices only); a run adds what its earlier
        sessions spent."""
        self.halted = False
        """Set when the client stops: no attempt starts after it (one that failed was not
        paid for; the request waits for the next run)."""
        self.reached = False
        """Whether a call has been answered: until then an unreachable server ends the
        retries after :data:`UNREACHABLE_ATTEMPTS` (seconds, not minutes)."""
        self._reserved = 0.0

    def bound(self, request: BaseModel) -> tuple[int, int]:
        """Upper bounds on a request's (input, output) tokens: :func:`max_input_tokens`,
        and ``max_new_tokens`` plus the hidden reasoning budget. The one request-size
        bound (``max_cost``, batch estimates, the dry run)."""
        output = (request.max_new_tokens + self.hidden_output
                  if isinstance(request, GenerationRequest) else 0)
        return max_input_tokens(request), output

    def estimated_cost(self, requests: Iterable[BaseModel], *,
                       batch: bool = False) -> float | None:
        """Upper-bound USD of sending ``requests`` (:meth:`bound`), or None (no price);
        ``batch``: at the provider's batch rates."""
        total = 0.0
        for request in requests:
            cost = self.prices.cost(self.model, *self.bound(request), batch=batch)
            if cost is None:
                return None
            total += cost
        return total

    def tokens_cost(self, input_tokens: float | None, output_tokens: float | None, *,
                    batch: bool = False) -> float | None:
        """USD of so many tokens (a plan's estimate), None when the model has no price."""
        return self.prices.cost(self.model, input_tokens, output_tokens, batch=batch)

    def cost(self, generation: Generation, *, batch: bool = False) -> float | None:
        """USD of one answer from the usage it reports (``batch``: at batch rates), None
        when the model has no price: the one place answers are priced."""
        return self.prices.generation_cost(self.model, generation, batch=batch)

    def _on_failure(self, failure: CallFailed) -> None:
        # A 429 that says how long to wait holds every caller back, not only this one.
        if self.limiter is not None and isinstance(failure, RateLimited) and failure.retry_after:
            self.limiter.pause(failure.retry_after)

    async def call(self, fn: Callable[[Sequence[Q]], Awaitable[Sequence[R]]],
                   batch: Sequence[Q], *, on_billed: Callable[[], None] | None = None
                   ) -> list[R]:
        """``fn(batch)`` under the budget, the rate limiter and the retry policy; the
        caller then :meth:`charge` s what the answers cost. ``on_billed`` hears of each
        failed attempt that was billed all the same (an answer cut short)."""
        reserve = 0.0
        if self.limits.max_cost is not None:
            reserve = self.estimated_cost(batch) or 0.0
            if self.spent + self._reserved + reserve > self.limits.max_cost:
                raise BudgetReached(f"Not sent: it could take this session past max_cost "
                                    f"${self.limits.max_cost}.")
            self._reserved += reserve
        estimate = sum(estimate_tokens(r, self.hidden_output) for r in batch)

        async def attempt() -> Sequence[R]:
            if self.halted:
                raise Halted
            if self.limiter is not None:
                await self.limiter.acquire(estimate)
                if self.halted:
                    raise Halted
            try:
                answers = await fn(batch)
            except BaseException:
                # A refused call used no tokens; the request itself stays counted.
                if self.limiter is not None:
                    self.limiter.settle(estimate, 0)
                raise
            if self.limiter is not None:
                self.limiter.settle(estimate, _used_tokens(answers))
            self.reached = True
            return answers

        def seen(failure: CallFailed) -> None:
            if failure.billed and on_billed is not None:
                on_billed()
            self._on_failure(failure)

        def give_up(failure: CallFailed, attempts: int) -> bool:
            return (isinstance(failure, Unreachable) and not self.reached
                    and attempts >= UNREACHABLE_ATTEMPTS)

        try:
            return list(await call_with_retry(attempt, self.limits.retry, stats=self.stats,
                                              on_failure=seen, give_up=give_up))
        finally:
            # The caller charges the real cost right after (no await in between), so the
            # budget never sees a moment where a finished call counts for nothing.
            self._reserved -= reserve

    def charge(self, usd: float) -> None:
        """Count what a finished call cost (its caller prices it once, from its usage)."""
        self.spent += usd


def _used_tokens(answers: Sequence[BaseModel]) -> int | None:
    total = 0
    for answer in answers:
        if not isinstance(answer, Generation):
            return None
        if answer.input_tokens is None or answer.output_tokens is None:
            return None
        total += answer.input_tokens + answer.output_tokens
    return total
