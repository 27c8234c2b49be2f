"""200s that are no completion, on both wires, against the billing server: each is a
retried failure naming the server, never a traceback; a server that keeps sending them
stops the run with one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from billing_server import MODEL, BillingServer, price_file_text

from mike_sdk.backend import Backend, GenerationRequest
from mike_sdk.backends.anthropic import AnthropicBackend
from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.client import ModelClient, run_sync
from mike_sdk.calls.failures import Transient
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=6, base_wait_s=0.01, max_wait_s=0.02, deadline_s=30)


@pytest.fixture
def server() -> Iterator[BillingServer]:
    billing = BillingServer(seed=3)
    yield billing
    billing.close()


def backend(wire: str, server: BillingServer) -> Backend:
    if wire == "openai":
        return OpenAIBackend(MODEL, base_url=f"{server.url}/v1", api_key="k", timeout=5)
    return AnthropicBackend(MODEL, base_url=server.url, api_key="k", timeout=5)


def prompts(n: int) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"Question {i}: where?") for i in range(n)]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_third_malformed_is_retried_to_an_answer_each(wire: str, server: BillingServer,
                                                        tmp_path: Path) -> None:
    server.knobs.malformed = 0.3
    prices = tmp_path / "prices.json"
    prices.write_text(price_file_text())
    client = ModelClient(backend(wire, server), limits=Limits(retry=FAST, prices=prices),
                         concurrency=8)
    answers = run_sync(client.backend, client.generate({client.key(r): r for r in prompts(60)}))
    assert {a.generation.text for a in answers.values() if a.generation} == {"Paris"}
    assert len(answers) == 60 and client.fatal is None
    kinds = {k for k in ("cut json", "html", "error object") if server.statuses[k]}
    assert kinds == {"cut json", "html", "error object"}  # every kind was met and survived
    assert client.guard.stats.transient == sum(server.statuses[k] for k in kinds)
    # A cut answer was billed: it is counted with the answer that followed it.
    counted = sum(a.cost_usd or 0.0 for a in answers.values())
    assert counted == pytest.approx(server.bill.usd) and server.bill.calls > 60


@pytest.mark.parametrize(("kind", "says"), [
    ("cut json", "not valid JSON"), ("html", "not JSON ('<html><body>Maintenance"),
    ("error object", "an error instead of a completion: overloaded")])
@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_only_malformed_bodies_fail_with_one_line_naming_the_server(
        wire: str, kind: str, says: str, server: BillingServer) -> None:
    server.knobs.malformed, server.knobs.kind = 1.0, kind
    client = ModelClient(backend(wire, server), limits=Limits(retry=FAST), concurrency=2)
    answers = run_sync(client.backend, client.generate({client.key(r): r for r in prompts(3)}))
    assert answers == {}
    assert isinstance(client.fatal, Transient)
    message = str(client.fatal)
    assert says in message and server.url in message and "\n" not in message
