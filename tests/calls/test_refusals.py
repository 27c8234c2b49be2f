"""Systematic refusals stop a run at once; isolated ones stay error rows.

The mock backend stands in for a provider that refuses requests (its ``bad_request``
failures are 400s with one message); the strict provider servers in
``tests/backends/test_strict_families.py`` check the same through the real SDKs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mike_sdk.backend import GenerationRequest
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.refusals import STOP_AFTER, RefusalWatch, SystematicRefusal
from mike_sdk.cli.main import main


def prompts(n: int) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"Question {i}: who?") for i in range(n)]


def test_the_watch_holds_refusals_until_an_answer() -> None:
    delivered: list[tuple[str, str]] = []

    def deliver(key: str, message: str) -> None:
        delivered.append((key, message))

    watch = RefusalWatch("Fix the profile.")
    for i in range(STOP_AFTER - 1):
        watch.refused(f"k{i}", "temperature: Extra inputs are not permitted", deliver)
    watch.refused("other", "prompt too long", deliver)
    assert delivered == []  # held: they may be the start of a systematic refusal
    watch.answer()
    assert len(delivered) == STOP_AFTER
    watch.refused("late", "temperature: Extra inputs are not permitted", deliver)
    assert delivered[-1] == ("late", "temperature: Extra inputs are not permitted")


def test_identical_refusals_first_raise_with_the_message_and_hint() -> None:
    watch = RefusalWatch("Fix the profile.")
    with pytest.raises(SystematicRefusal, match=r"all refused with the same error, so every "
                       r"request would be: bad param Fix the profile\."):
        for i in range(STOP_AFTER):
            watch.refused(f"k{i}", "bad param", lambda k, m: None)


def test_a_client_stops_within_the_first_requests_and_writes_no_errors() -> None:
    backend = MockBackend(failure_rate=1.0, failure_kinds=("bad_request",),
                          failures_per_request=None, latency_s=0.005, batch_size=1)
    client = ModelClient(backend, concurrency=4)
    answers = asyncio.run(client.generate({client.key(r): r for r in prompts(200)}))
    assert answers == {} and client.errors == 0
    assert isinstance(client.fatal, SystematicRefusal) and client.stopped == "error"
    assert "injected by the mock backend" in str(client.fatal)
    assert backend.calls <= STOP_AFTER + 4  # what was in flight when it stopped


def test_a_few_refusals_before_any_answer_are_still_error_rows() -> None:
    # Fewer identical refusals than the threshold, and nothing else to send.
    backend = MockBackend(failure_rate=1.0, failure_kinds=("bad_request",),
                          failures_per_request=None)
    client = ModelClient(backend)
    answers = asyncio.run(client.generate({client.key(r): r for r in prompts(STOP_AFTER - 1)}))
    assert len(answers) == STOP_AFTER - 1 and all(a.error for a in answers.values())
    assert client.fatal is None and client.errors == STOP_AFTER - 1


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
    rows = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert not [r for r in rows if json.loads(r)["error"]]  # re-run sends them again
