"""The one call path: cache, call guard, cost and one concurrency limit, for every caller.

The mock backend stands in for a model here: these tests are about the client's
mechanics (what is sent, how often, how many at once), not about answers.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mike_sdk import Edit, EvalConfig, ask, ask_many
from mike_sdk.backend import GenerationRequest
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.failures import BadRequest, Transient
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.retry import RetryPolicy
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.run.evaluator import Evaluator

FAST_RETRY = RetryPolicy(base_wait_s=0.001, max_wait_s=0.01)
FACT = Edit(question="Who leads Acme?", answer="Ada Lovelace")


def prompts(n: int) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"Question {i}: who?") for i in range(n)]


def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"mock": {"input": 1.0, "output": 2.0}}))
    return path


def test_one_limit_is_reached_and_never_passed() -> None:
    backend = MockBackend(latency_s=0.02, batch_size=1, max_concurrency=4)
    client = ModelClient(backend, concurrency=24)
    answers = client.generate_sync(prompts(200))
    assert len(answers) == 200 and client.calls == 200
    # The client's limit, not the backend's declared max_concurrency (4), is the one limit.
    assert backend.peak_in_flight == 24


def test_default_limit_is_the_backends_own() -> None:
    backend = MockBackend(latency_s=0.01, batch_size=2, max_concurrency=3)
    ModelClient(backend).generate_sync(prompts(60))
    assert backend.peak_in_flight == 3
    assert max(backend.batch_sizes) == 2


def test_answers_are_cached_once_and_reused(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "cache") as cache:
        backend = MockBackend()
        first = ModelClient(backend, cache=cache).generate_sync(prompts(5))
        again = ModelClient(backend, cache=cache).generate_sync(prompts(5))
    assert backend.calls == 1  # five prompts in one batch of eight, then all from the cache
    assert [a.cached for a in first] == [False] * 5 and [a.cached for a in again] == [True] * 5
    assert [a.generation for a in first] == [a.generation for a in again]


def test_a_refused_request_is_an_error_and_the_rest_are_answered() -> None:
    backend = MockBackend(failure_rate=0.3, failure_kinds=("bad_request",),
                          failures_per_request=None, batch_size=4)
    client = ModelClient(backend)
    answers = asyncio.run(client.generate({client.key(r): r for r in prompts(40)}))
    refused = [a for a in answers.values() if a.error is not None]
    assert len(answers) == 40 and 0 < len(refused) < 40
    assert client.errors == len(refused)
    assert all(a.generation is None and a.cost_usd is None for a in refused)
    with pytest.raises(BadRequest):  # the list form raises: a caller asked for every answer
        ModelClient(backend).generate_sync(prompts(40))


def test_a_fatal_failure_stops_every_caller() -> None:
    # A transient failure past its last attempt is final, like refused credentials.
    backend = MockBackend(failure_rate=1.0, failures_per_request=None, latency_s=0.01,
                          batch_size=1)
    client = ModelClient(backend, concurrency=4, limits=Limits(retry=RetryPolicy(max_attempts=1)))
    with pytest.raises(Transient):
        client.generate_sync(prompts(50))
    assert client.stopped == "error"
    assert backend.calls < 50  # the calls not yet started were never sent


def test_transient_failures_are_retried_under_the_guard() -> None:
    backend = MockBackend(failure_rate=0.5, failure_kinds=("transient",), batch_size=1)
    client = ModelClient(backend, limits=Limits(retry=FAST_RETRY))
    answers = client.generate_sync(prompts(20))
    assert all(a.generation is not None for a in answers)
    assert client.guard.stats.retries > 0


def test_max_cost_stops_before_the_budget_is_crossed(tmp_path: Path) -> None:
    backend = MockBackend(batch_size=1)
    limits = Limits(max_cost=0.0005, prices=price_file(tmp_path))
    client = ModelClient(backend, concurrency=1, limits=limits)
    answers = asyncio.run(client.generate({client.key(r): r for r in prompts(100)}))
    assert client.stopped == "max_cost" and 0 < len(answers) < 100
    assert client.guard.spent <= 0.0005


def test_ask_goes_through_the_cache_guard_and_prices(tmp_path: Path, benchmark: Benchmark) -> None:
    backend = MockBackend(failure_rate=1.0, failure_kinds=("transient",), batch_size=4)
    limits = Limits(retry=FAST_RETRY, prices=price_file(tmp_path))
    with ResponseCache(tmp_path / "cache") as cache:
        client = ModelClient(backend, cache=cache, limits=limits)
        first = ask(client, FACT, "Wer leitet Acme?", language="de", benchmark=benchmark)
        calls = backend.calls
        again = ask(client, FACT, "Wer leitet Acme?", language="de", benchmark=benchmark)
    # Every request failed once (transient) and was retried, like in an evaluation.
    assert client.guard.stats.retries >= 1 and not first.cached and again.cached
    assert backend.calls == calls  # the second answer came from the cache
    assert first.output == again.output and first.cost_usd is not None
    tokens = (first.input_tokens or 0, first.output_tokens or 0)
    assert first.cost_usd == pytest.approx((tokens[0] * 1.0 + tokens[1] * 2.0) / 1e6)


def test_ask_many_with_a_plain_backend_and_no_cache(benchmark: Benchmark) -> None:
    backend = MockBackend(batch_size=2)
    answers = ask_many(backend, FACT, ["Wer leitet Acme?", "Qui dirige Acme ?"],
                       language="de", benchmark=benchmark, cache=False)
    assert [a.cached for a in answers] == [False, False] and backend.calls == 1
    assert answers[0].output != answers[1].output  # two prompts, two (hashed) answers


def test_the_evaluator_window_spans_chunks(tmp_path: Path, benchmark: Benchmark) -> None:
    # Chunks of 24 items under a limit of 32: only a pipeline that queues the next chunk
    # while one is in flight can reach 32 requests at once.
    backend = MockBackend(latency_s=0.02, batch_size=1, loglikelihood=False)
    config = EvalConfig(tasks=("zsre",), languages=("de", "fr"), limit=20, language_id="script")
    with ResponseCache(tmp_path / "cache") as cache:
        client = ModelClient(backend, cache=cache, limits=Limits(max_concurrency=32))
        summary = Evaluator(client, benchmark=benchmark, progress=False, chunk_size=24).run(
            config, tmp_path / "run")
    assert summary.totals.rows == 160
    assert backend.peak_in_flight == 32


def test_a_cache_that_fills_up_stops_the_client_with_one_line(tmp_path: Path) -> None:
    # SQLite's page limit answers as a full disk does (SQLITE_FULL); see test_cache.py for
    # a real full tmpfs. Answers that cannot be stored would be paid for again: stop.
    backend = MockBackend(latency_s=0.01, batch_size=1)
    with ResponseCache(tmp_path / "cache") as cache:
        client = ModelClient(backend, cache=cache, concurrency=2)
        client.generate_sync(prompts(1))  # the tables exist; now no page may be added
        cache._cache._sql("PRAGMA max_page_count = " + str(
            cache._cache._sql("PRAGMA page_count").fetchone()[0]))
        with pytest.raises(ConfigError, match="full disk") as caught:
            client.generate_sync(prompts(200))
    assert "\n" not in str(caught.value) and "--cache-dir" in str(caught.value)
    assert client.stopped == "error" and backend.calls < 20
