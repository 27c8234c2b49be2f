"""Stops of every kind let the answers in flight land: nothing paid is lost.

Against the billing server (a real OpenAI-wire server on loopback that bills every 200
it sends): what the server billed is compared with what the cache holds and what the
client counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from billing_server import MODEL, BillingServer, price_file_text

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.failures import AuthFailed
from mike_sdk.calls.limits import Limits


@pytest.fixture
def server() -> Iterator[BillingServer]:
    billing = BillingServer(seed=5)
    yield billing
    billing.close()


def prompts(n: int) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"Question {i}: where is the Eiffel tower?")
            for i in range(n)]


def openai(server: BillingServer) -> OpenAIBackend:
    return OpenAIBackend(MODEL, base_url=f"{server.url}/v1", api_key="k", timeout=10)



def test_an_interrupted_call_lets_its_requests_in_flight_land(server: BillingServer,
                                                              tmp_path: Path) -> None:
    # Ctrl-C cancels the run's task: the 8 requests in flight are billed by the server
    # either way, so they are waited for and cached; nothing queued is sent.
    server.knobs.latency_s = 0.4
    cache = ResponseCache(tmp_path / "cache")
    client = ModelClient(openai(server), cache=cache, concurrency=8)
    requests = {client.key(r): r for r in prompts(40)}

    async def interrupted() -> None:
        task = asyncio.create_task(client.generate(requests))
        await asyncio.sleep(0.15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.backend.release_connections()

    asyncio.run(interrupted())
    assert server.bill.calls == 8 and not client.abandoned_keys
    assert len(cache.get_many(requests)) == 8  # every billed answer is in the cache


def test_a_fatal_failure_lets_the_others_in_flight_land(tmp_path: Path) -> None:
    # One request fails for good (credentials refused) while seven others are on the way.
    class OneRefusedKey(OpenAIBackend):
        async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
            if requests[0].prompt and requests[0].prompt.startswith("Question 0:"):
                await asyncio.sleep(0.1)  # the others are on their way by then
                raise AuthFailed("Authentication failed (401): bad key.", status=401)
            return await super().generate(requests)

    server = BillingServer()
    try:
        server.knobs.latency_s = 0.3
        cache = ResponseCache(tmp_path / "cache")
        client = ModelClient(OneRefusedKey(MODEL, base_url=f"{server.url}/v1", api_key="k"),
                             cache=cache, concurrency=8)
        requests = {client.key(r): r for r in prompts(40)}

        async def run() -> None:
            await client.generate(requests)
            await client.backend.release_connections()

        asyncio.run(run())
        assert isinstance(client.fatal, AuthFailed) and client.stopped == "error"
        assert server.bill.calls == 7 == len(cache.get_many(requests)) == client.calls
    finally:
        server.close()


def test_max_cost_holds_when_the_server_reports_no_usage(server: BillingServer,
                                                         tmp_path: Path) -> None:
    # No usage: each answer is charged at its request's upper bound, so the budget stops
    # the client before the bill can cross the cap.
    server.knobs.usage, server.knobs.latency_s = False, 0.02
    prices = tmp_path / "prices.json"
    prices.write_text(price_file_text())
    cap = 0.004
    client = ModelClient(openai(server), limits=Limits(max_cost=cap, prices=prices),
                         concurrency=16)
    requests = {client.key(r): r for r in prompts(200)}

    async def run() -> dict[str, object]:
        answers = await client.generate(requests)
        await client.backend.release_connections()
        return dict(answers)

    answers = asyncio.run(run())
    assert client.stopped == "max_cost" and 0 < server.bill.calls < 200
    assert server.bill.usd <= cap
    assert client.guard.spent <= cap and client.guard.spent >= server.bill.usd
    charged = [a.cost_usd for a in answers.values()]  # type: ignore[attr-defined]
    assert all(c is not None and c > 0 for c in charged)


def test_a_server_that_never_answers_is_said_at_each_retry(
        server: BillingServer, caplog: pytest.LogCaptureFixture) -> None:
    from mike_sdk.calls.failures import TimedOut
    from mike_sdk.calls.retry import RetryPolicy

    server.knobs.stall, server.knobs.stall_s = 1.0, 3.0
    backend = OpenAIBackend(MODEL, base_url=f"{server.url}/v1", api_key="k", timeout=0.3)
    client = ModelClient(backend, limits=Limits(retry=RetryPolicy(
        max_attempts=3, base_wait_s=0.01, max_wait_s=0.02)))
    caplog.set_level("WARNING", logger="mike_sdk")
    with pytest.raises(TimedOut, match=f"request to {server.url}/v1 timed out"):
        client.generate_sync(prompts(1))
    said = [r for r in caplog.records if "timed out" in r.getMessage()]
    assert len(said) == 2 and all(r.levelname == "WARNING" for r in said)  # attempts 1, 2
