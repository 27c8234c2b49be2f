"""Systematic refusals stop a run; isolated ones stay error rows, even many of them early.

The mock backend stands in for a provider that refuses requests (its ``bad_request``
failures are 400s with one message); the strict provider servers in
``tests/backends/test_strict_families.py`` check the same through the real SDKs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from rows import results_text

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.failures import BadRequest
from mike_sdk.calls.refusals import WINDOW, RefusalWatch, SystematicRefusal
from mike_sdk.cli.main import main


def prompts(n: int) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"Question {i}: who?") for i in range(n)]


def test_the_watch_holds_refusals_until_an_answer() -> None:
    delivered: list[tuple[str, str]] = []

    def deliver(key: str, message: str) -> None:
        delivered.append((key, message))

    watch = RefusalWatch("Fix the profile.")
    for i in range(WINDOW - 1):
        watch.refused(f"k{i}", "temperature: Extra inputs are not permitted", deliver)
    watch.refused("other", "prompt too long", deliver)
    assert delivered == [] and not watch.suspicious  # held: maybe a systematic refusal
    watch.answer()
    assert len(delivered) == WINDOW and watch.verdict() is None
    watch.refused("late", "temperature: Extra inputs are not permitted", deliver)
    assert delivered[-1] == ("late", "temperature: Extra inputs are not permitted")


def test_identical_refusals_and_no_answer_give_a_verdict_with_the_message_and_hint() -> None:
    watch = RefusalWatch("Fix the profile.")
    for i in range(WINDOW):
        assert not watch.suspicious
        watch.refused(f"k{i}", "bad param", lambda k, m: None)
    assert watch.suspicious
    failure = watch.verdict()
    assert isinstance(failure, SystematicRefusal)
    assert str(failure).endswith("so every request would be: bad param Fix the profile.")


def test_an_answer_landing_after_the_window_clears_the_suspicion() -> None:
    delivered: list[str] = []
    watch = RefusalWatch()
    for i in range(WINDOW):
        watch.refused(f"k{i}", "bad param", lambda k, m: delivered.append(k))
    watch.answer()  # a request that was in flight came back answered
    assert not watch.suspicious and watch.verdict() is None and len(delivered) == WINDOW


def test_a_client_stops_within_the_window_and_writes_no_errors() -> None:
    backend = MockBackend(failure_rate=1.0, failure_kinds=("bad_request",),
                          failures_per_request=None, latency_s=0.005, batch_size=1)
    client = ModelClient(backend, concurrency=4)
    answers = asyncio.run(client.generate({client.key(r): r for r in prompts(200)}))
    assert answers == {} and client.errors == 0
    assert isinstance(client.fatal, SystematicRefusal) and client.stopped == "error"
    assert "injected by the mock backend" in str(client.fatal)
    assert WINDOW <= backend.calls <= WINDOW + 3  # what was in flight when it stopped


def test_a_tenth_refused_at_high_concurrency_never_stops_the_run() -> None:
    # The content filter: 10% of prompts refused, 64 in flight, answers slower
    # than refusals (so the refusals land first). Every refusal is an error row, every
    # other request answered, once.
    backend = MockBackend(failure_rate=0.1, failure_kinds=("bad_request",),
                          failures_per_request=None, latency_s=0.01, batch_size=1)
    client = ModelClient(backend, concurrency=64)
    requests = {client.key(r): r for r in prompts(600)}
    answers = asyncio.run(client.generate(requests))
    refused = [a for a in answers.values() if a.error]
    assert client.fatal is None and client.stopped is None
    assert len(answers) == 600 and 30 <= len(refused) <= 90
    assert client.errors == len(refused) and client.calls == 600 - len(refused)


def test_when_all_but_the_slowest_are_refused_the_pending_answer_decides() -> None:
    # WINDOW identical refusals with one request still in flight: nothing new is sent
    # until it lands; it is answered, so the refusals were isolated and the run goes on.
    class SlowFirst(MockBackend):
        async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
            if requests[0].prompt == "slow":
                await asyncio.sleep(0.2)
                return await MockBackend.generate(self, requests)
            raise BadRequest("Request refused (400): filtered", status=400)

    backend = SlowFirst(latency_s=0.0, batch_size=1)
    client = ModelClient(backend, concurrency=8)
    requests = [GenerationRequest(prompt="slow"), *prompts(3 * WINDOW)]
    answers = asyncio.run(client.generate({client.key(r): r for r in requests}))
    assert client.fatal is None and len(answers) == len(requests)
    assert sum(1 for a in answers.values() if a.error) == 3 * WINDOW


def test_a_few_refusals_before_any_answer_are_still_error_rows() -> None:
    # Fewer identical refusals than the window, and nothing else to send.
    backend = MockBackend(failure_rate=1.0, failure_kinds=("bad_request",),
                          failures_per_request=None)
    client = ModelClient(backend)
    answers = asyncio.run(client.generate({client.key(r): r for r in prompts(WINDOW - 1)}))
    assert len(answers) == WINDOW - 1 and all(a.error for a in answers.values())
    assert client.fatal is None and client.errors == WINDOW - 1


def test_the_cli_exits_nonzero_with_the_providers_message(tmp_path: Path, data_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    code = main(["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
                 "--languages", "de", "--limit", "10", "--run-dir", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                 "--language-id", "script", "--backend-option", "failure_rate=1.0",
                 "--backend-option", "failure_kinds=bad_request",
                 "--backend-option", "failures_per_request=none", "--no-likelihood"])
    assert code != 0
    err = capsys.readouterr().err
    assert "all refused with the same error" in err and "injected by the mock" in err
    rows = results_text(tmp_path / "run").splitlines()
    assert not [r for r in rows if json.loads(r)["error"]]  # re-run sends them again
