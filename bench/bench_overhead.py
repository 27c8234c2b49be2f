"""Per-call overhead of the shared machinery (limiter, retry layer, cache) vs a bare call.

Times N sequential calls to an in-process backend that answers at once, so that
everything measured is overhead: the bare ``await backend.generate([request])``,
then the same call through each layer and through all of them together, as the
evaluator makes it (rate limiter with generous limits, tenacity retry layer,
cost accounting, cache key and cache write). Prints microseconds per call.

    python bench/bench_overhead.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from mike_sdk.backend import Generation, GenerationRequest, Identity
from mike_sdk.calls.cache import ResponseCache, request_key
from mike_sdk.calls.limits import CallGuard, Limits
from mike_sdk.calls.ratelimit import RateLimiter, estimate_tokens
from mike_sdk.calls.retry import RetryPolicy, call_with_retry

IDENTITY = Identity(kind="bench", model="gpt-4o-mini")
ANSWER = [Generation(text='Paris" Question', input_tokens=90, output_tokens=3,
                     finish_reason="stop")]


async def instant(requests: Sequence[GenerationRequest]) -> list[Generation]:
    """A backend call that costs nothing."""
    return ANSWER


async def timed(calls: int, one: Callable[[int], Awaitable[object]]) -> float:
    """Microseconds per call of ``one(i)``."""
    started = time.perf_counter()
    for i in range(calls):
        await one(i)
    return (time.perf_counter() - started) / calls * 1e6


async def main(calls: int) -> None:
    requests = [GenerationRequest(prompt=f"New Fact: item {i} " + "x" * 300, max_new_tokens=15)
                for i in range(calls)]
    limiter = RateLimiter(rpm=1e9, tpm=1e12)
    policy = RetryPolicy()
    guard = CallGuard(Limits(rpm=1e9, tpm=1e12), IDENTITY.model)

    async def bare(i: int) -> object:
        return await instant([requests[i]])

    async def limited(i: int) -> object:
        estimate = estimate_tokens(requests[i])
        await limiter.acquire(estimate)
        answers = await instant([requests[i]])
        limiter.settle(estimate, 93)
        return answers

    async def retried(i: int) -> object:
        return await call_with_retry(lambda: instant([requests[i]]), policy)

    with tempfile.TemporaryDirectory() as tmp, ResponseCache(Path(tmp) / "c") as cache:
        async def cached(i: int) -> object:
            answers = await instant([requests[i]])
            key = request_key(IDENTITY, "generate", requests[i])
            cache.put_many([(key, answers[0].model_dump())])
            return answers

        async def everything(i: int) -> object:
            answers = await guard.call(instant, [requests[i]])
            key = request_key(IDENTITY, "generate", requests[i])
            cache.put_many([(key, answers[0].model_dump())])
            return answers

        figures = {"bare call": await timed(calls, bare),
                   "+ rate limiter": await timed(calls, limited),
                   "+ retry layer": await timed(calls, retried),
                   "+ cache key and write": await timed(calls, cached),
                   "all (guard + cache)": await timed(calls, everything)}
    base = figures["bare call"]
    print(f"{calls} sequential calls to an instant in-process backend:")
    for name, micros in figures.items():
        extra = "" if name == "bare call" else f"  (overhead {micros - base:7.1f} us)"
        print(f"  {name:24} {micros:8.1f} us/call{extra}")
    print("A real API call takes 300,000-3,000,000 us.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    asyncio.run(main(parser.parse_args().calls))
