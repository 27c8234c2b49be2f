"""The journal of requests in flight holds a request only once its body is on the socket.

Against the billing server (a real OpenAI-wire server on loopback), through both of the
SDK's transports: requests queued behind the concurrency limit are not journaled, those
the server holds are, and a request that never reached a server (nothing listens) is not.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Literal

import pytest
from billing_server import MODEL, BillingServer

from mike_sdk.backend import GenerationRequest
from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.retry import RetryPolicy

Transport = Literal["httpx", "aiohttp"]
TRANSPORTS: list[Transport] = ["httpx", "aiohttp"]


@pytest.fixture
def server() -> Iterator[BillingServer]:
    billing = BillingServer()
    yield billing
    billing.close()


def requests_for(client: ModelClient, n: int) -> dict[str, GenerationRequest]:
    asked = [GenerationRequest(prompt=f"Question {i}: where is the Louvre?") for i in range(n)]
    return {client.key(r): r for r in asked}


def backend(url: str, transport: Transport) -> OpenAIBackend:
    return OpenAIBackend(MODEL, base_url=f"{url}/v1", api_key="k", timeout=10,
                         transport=transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_requests_queued_behind_the_limit_are_not_journaled(server: BillingServer,
                                                            transport: Transport) -> None:
    server.knobs.latency_s = 0.6  # the server holds each request: the first 4 stay in flight
    client = ModelClient(backend(server.url, transport), concurrency=4)
    requests = requests_for(client, 12)
    journal: list[str] = []
    seen: list[tuple[int, int]] = []

    async def run() -> None:
        task = asyncio.create_task(client.generate(requests, on_send=journal.extend))
        while server.in_flight < 4:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # anything journaled too early would be there by now
        seen.append((len(journal), server.in_flight))
        await task
        await client.backend.release_connections()

    asyncio.run(run())
    assert seen == [(4, 4)]  # the 8 queued requests are not in the journal
    assert sorted(journal) == sorted(requests) and server.bill.calls == 12


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_request_that_reached_no_server_is_not_journaled(transport: Transport) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ModelClient(backend(f"http://127.0.0.1:{port}", transport),
                         limits=Limits(retry=RetryPolicy(max_attempts=2, base_wait_s=0.01,
                                                         max_wait_s=0.02)))
    journal: list[str] = []

    async def run() -> None:
        await client.generate(requests_for(client, 3), on_send=journal.extend)
        await client.backend.release_connections()

    asyncio.run(run())
    assert client.stopped == "error" and journal == []
