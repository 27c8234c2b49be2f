"""The ``mock`` backend: deterministic answers, latency, failures, counters, CLI use."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from rows import results_text

from mike_sdk.backend import (
    BACKENDS,
    Backend,
    ChatMessage,
    GenerationRequest,
    Identity,
    LikelihoodRequest,
)
from mike_sdk.backends.mock import MockBackend, MockTokenizer
from mike_sdk.calls.failures import BadRequest, RateLimited, Transient
from mike_sdk.cli.main import main
from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.rundir import read_summary
from mike_sdk.scoring.scorers import paper_f1

PROMPTS = [f'New Fact: "Who is the CEO of Acme? Ada {i}"\nQuestion: "Wer leitet Acme?" Answer: "'
           for i in range(20)]


def generate(backend: MockBackend, *requests: GenerationRequest) -> list[str]:
    return [g.text for g in asyncio.run(backend.generate(list(requests)))]


def test_registered_cheap_and_a_backend() -> None:
    started = time.perf_counter()
    backend = BACKENDS.create("mock")
    assert isinstance(backend, MockBackend) and isinstance(backend, Backend)
    assert time.perf_counter() - started < 0.1
    assert backend.identity == Identity(kind="mock", model="mock")
    assert BACKENDS.create("mock", model="other").identity.model == "other"
    abilities = backend.abilities
    assert abilities.completion and not abilities.chat
    assert abilities.tokenizer and abilities.loglikelihood
    assert (abilities.batch_size, abilities.max_concurrency) == (8, 4)
    doc = (MockBackend.__doc__ or "").splitlines()[0]
    assert "deterministic" in doc  # the line `mike backends` shows


@pytest.mark.parametrize("options", [{"latency_s": -1}, {"failure_rate": 1.5},
                                     {"answer": "gold"}, {"no_such_option": 1},
                                     {"batch_size": 0}, {"completion": False}])
def test_invalid_options_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="mock"):
        MockBackend(**options)  # type: ignore[arg-type]


def test_answers_are_a_pure_function_of_the_request() -> None:
    requests = [GenerationRequest(prompt=p, stop=('"',)) for p in PROMPTS]
    first = generate(MockBackend(), *requests)
    assert first == generate(MockBackend(), *reversed(requests))[::-1]
    assert len(set(first)) == len(first)  # different prompts, different answers
    assert all(t.startswith("mock answer ") and t.endswith('"') for t in first)
    # Without a stop string the answer ends itself; max_new_tokens cuts it.
    (plain,) = asyncio.run(MockBackend().generate([GenerationRequest(prompt=PROMPTS[0])]))
    assert plain.text == first[0][:-1] and plain.finish_reason == "eos"
    (cut,) = asyncio.run(MockBackend().generate([GenerationRequest(prompt=PROMPTS[0],
                                                                   max_new_tokens=2)]))
    assert cut.text == "mock answer" and cut.finish_reason == "length"
    assert cut.output_tokens == 2 and cut.input_tokens == len(MockTokenizer().encode(PROMPTS[0]))


def test_answer_modes_and_replies() -> None:
    request = GenerationRequest(prompt=PROMPTS[3], stop=('"',))
    assert generate(MockBackend(answer="fixed", text="Paris"), request) == ['Paris"']
    echo = MockBackend(answer="echo")
    assert generate(echo, request.model_copy(update={"max_new_tokens": 100})) == [PROMPTS[3] + '"']
    assert generate(echo, request) == ['New Fact: "Who is the CEO of Acme? Ada 3"\nQuestion']
    assert generate(MockBackend(answer="edit"), request) == ['Ada 3"']
    picked = {generate(MockBackend(answer="choice", choices=("a", "b")), GenerationRequest(
        prompt=p))[0] for p in PROMPTS}
    assert picked == {"a", "b"}
    knows = MockBackend(replies={"Ada 3": "Ada Lovelace"})
    assert generate(knows, request, GenerationRequest(prompt=PROMPTS[4]))[0] == 'Ada Lovelace"'
    # Answer options are part of the identity (the cache key); latency and failures are not.
    assert MockBackend(answer="fixed").identity != MockBackend().identity
    assert MockBackend(latency_s=1, failure_rate=0.5).identity == MockBackend().identity


def test_chat_only_mock_reads_messages() -> None:
    backend = MockBackend(completion=False, chat=True)
    assert backend.abilities.chat and not backend.abilities.completion
    messages = (ChatMessage(role="system", content="Be brief."),
                ChatMessage(role="user", content="Wer leitet Acme?"))
    (text,) = generate(backend, GenerationRequest(messages=messages, stop=('"',)))
    assert text.startswith("mock answer ") and '"' not in text
    with pytest.raises(BadRequest, match="chat messages only"):
        generate(backend, GenerationRequest(prompt="Q?"))


def test_latency_overlaps_and_counters_show_it() -> None:
    backend = MockBackend(latency_s=0.2)

    async def four_calls() -> None:
        await asyncio.gather(*(backend.generate([GenerationRequest(prompt=p)])
                               for p in PROMPTS[:4]))

    started = time.perf_counter()
    asyncio.run(four_calls())
    assert time.perf_counter() - started < 0.6  # four calls of 0.2 s, in parallel
    assert backend.calls == 4 and backend.peak_in_flight == 4 and backend.in_flight == 0
    assert [r.prompt for r in backend.requests] == PROMPTS[:4] and backend.batch_sizes == [1] * 4


def test_failures_are_deterministic_and_of_the_chosen_classes() -> None:
    requests = [GenerationRequest(prompt=p) for p in PROMPTS]

    def failing(backend: MockBackend) -> list[int]:
        out = []
        for i, request in enumerate(requests):
            try:
                generate(backend, request)
            except Transient:
                out.append(i)
        return out

    once = failing(MockBackend(failure_rate=0.5, seed=1))
    assert 0 < len(once) < len(PROMPTS)
    assert failing(MockBackend(failure_rate=0.5, seed=1)) == once
    assert failing(MockBackend(failure_rate=0.5, seed=2)) != once
    # A failing request fails ``failures_per_request`` times, then succeeds.
    backend = MockBackend(failure_rate=1.0, failures_per_request=2, seed=1)
    for _ in range(2):
        with pytest.raises(Transient):
            generate(backend, requests[0])
    assert generate(backend, requests[0]) == generate(MockBackend(), requests[0])
    assert backend.failures == {"Transient": 2} and backend.calls == 3
    limited = MockBackend(failure_rate=1.0, failure_kinds=("rate_limited",), retry_after_s=0.5)
    with pytest.raises(RateLimited) as info:
        generate(limited, requests[0])
    assert info.value.retry_after == 0.5 and info.value.status == 429
    refused = MockBackend(failure_rate=1.0, failure_kinds=("bad_request",),
                          failures_per_request=None)
    for _ in range(3):
        with pytest.raises(BadRequest):
            generate(refused, requests[0])
    kinds = set()
    mixed = MockBackend(failure_rate=1.0, failure_kinds=("transient", "bad_request"))
    for request in requests:
        with pytest.raises((Transient, BadRequest)) as caught:
            generate(mixed, request)
        kinds.add(type(caught.value))
    assert kinds == {Transient, BadRequest}


def test_likelihoods_and_tokenizer_are_deterministic() -> None:
    backend = MockBackend()
    requests = [LikelihoodRequest(context=PROMPTS[0], continuation="Ada Lovelace"),
                LikelihoodRequest(context=PROMPTS[0], continuation="Bob")]
    first = asyncio.run(backend.loglikelihood(requests))
    assert first == asyncio.run(MockBackend().loglikelihood(requests))
    assert [s.tokens for s in first] == [2, 1]
    assert all(-11 <= s.mean <= -1 for s in first) and first[0].mean != first[1].mean
    assert backend.likelihood_calls == 1 and backend.scored == requests
    tokenizer = backend.get_tokenizer()
    assert tokenizer is not None
    assert paper_f1("Ada Lovelace", "Ada Lovelace", tokenizer) == 1.0
    assert paper_f1("Ada", "Ada Lovelace", tokenizer) == 0.5
    assert MockBackend(tokenizer=False).get_tokenizer() is None
    with pytest.raises(NotImplementedError):
        asyncio.run(MockBackend(loglikelihood=False).loglikelihood(requests))


def test_cli_eval_runs_on_the_mock(data_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
                 "--languages", "de", "--limit", "2", "--run-dir", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                 "--backend-option", "answer=fixed", "--backend-option", "text=2006",
                 "--language-id", "script"]) == 0
    summary = read_summary(tmp_path / "run")
    assert summary.backend.kind == "mock" and summary.totals.rows == 8
    # zsRE item 0's reliability gold is "2006": the fixed answer scores on it.
    rows = [json.loads(line) for line in results_text(tmp_path / "run").splitlines()]
    assert {r["answer"] for r in rows} == {"2006"}
    assert any(r["scores"]["paper_f1"] == 1.0 for r in rows)
    assert main(["backends"]) == 0
    assert "mock               A deterministic fake model" in capsys.readouterr().out
