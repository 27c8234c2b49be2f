"""The ``hf`` backend on the real embedded Gemma model, with prompts in the paper's format."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mike_sdk.backend import (
    BACKENDS,
    Backend,
    ChatMessage,
    Generation,
    GenerationRequest,
    LikelihoodRequest,
)
from mike_sdk.backends.embedded import EMBEDDED_MODEL_NAME, embedded_model_dir
from mike_sdk.backends.hf import HFBackend, folder_fingerprint
from mike_sdk.errors import BackendError, ConfigError

# English fact, question in another language (zsRE items), as BMIKE-53 renders them.
PROMPTS = [
    'New Fact: "Where does Spike Hughes originate from? Philadelphia"\n'
    'Question: "斯派克·休斯来自哪里？" Answer: "',
    'New Fact: "When was the inception of IAAF Combined Events Challenge? 2006"\n'
    'Question: "Wann wurde die IAAF Combined Events Challenge ins Leben gerufen?" Answer: "',
    'New Fact: "Which river flows through Vienna? Danube"\n'
    'Question: "Welcher Fluss fließt durch Wien?" Answer: "',
    'New Fact: "What is the capital of France? Berlin"\n'
    'Question: "What is the capital of France?" Answer: "',
    'Question: "Who wrote Hamlet?" Answer: "',
]
QUOTE = '"'


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def backend(hf_backend: HFBackend) -> HFBackend:
    """The embedded model, batched (loads on first use; the session's, see conftest.py)."""
    return hf_backend


@pytest.fixture(scope="session")
def paper_answers(backend: HFBackend) -> list[Generation]:
    """The paper's procedure: one prompt at a time, exactly 15 tokens, no stop strings."""
    return [run(backend.generate([GenerationRequest(prompt=p, max_new_tokens=15)]))[0]
            for p in PROMPTS]


@pytest.fixture(scope="session")
def batched_answers(backend: HFBackend) -> list[Generation]:
    """All prompts in one call: length-sorted micro-batches, stopping at the quote."""
    requests = [GenerationRequest(prompt=p, stop=(QUOTE,), max_new_tokens=15) for p in PROMPTS]
    return run(backend.generate(requests))


def test_construction_loads_nothing() -> None:
    import torch  # noqa: F401  (the identity asks torch whether CUDA is there; time the rest)

    started = time.perf_counter()
    backend = HFBackend(batch_size=4)
    assert backend.identity.model == EMBEDDED_MODEL_NAME
    assert backend.identity.revision and backend.identity.revision.startswith("sha256:")
    assert backend.abilities.batch_size == 4 and not backend.abilities.chat
    assert time.perf_counter() - started < 0.2
    assert backend.model is None and backend._tokenizer is None


def test_importing_and_creating_stays_light() -> None:
    # Registering and creating must not import torch; the identity needs torch only to ask
    # whether CUDA is there (precision is part of the cache key), never transformers.
    code = ("import sys; from mike_sdk.backend import BACKENDS; b = BACKENDS.create('hf'); "
            "print(sorted({'torch', 'transformers'} & set(sys.modules))); b.identity; b.abilities; "
            "print(sorted({'transformers'} & set(sys.modules)), b.identity.precision)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "[] float32"]


def test_registered_and_conforms_to_the_protocol() -> None:
    assert isinstance(BACKENDS.create("hf"), Backend)
    with pytest.raises(ConfigError):
        HFBackend(batch_size=0)


def test_prefix_reuse_is_an_option_on_by_default_and_outside_the_identity() -> None:
    assert HFBackend().options.prefix_reuse is True
    off = HFBackend(prefix_reuse=False)
    assert off.options.prefix_reuse is False
    # Reused keys and values give the plain path's answers: cached answers stay valid.
    assert off.identity == HFBackend().identity
    assert BACKENDS.create("hf", prefix_reuse=False).options.prefix_reuse is False
    with pytest.raises(ConfigError):
        HFBackend(prefix_reuse="sometimes")  # type: ignore[arg-type]


def test_identity_of_local_folders_and_hub_ids(tmp_path: Path) -> None:
    for parent in ("a", "b"):
        folder = tmp_path / parent / "my-model"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text('{"x": 1}', encoding="utf-8")
        (folder / "model.safetensors").write_bytes(b"0" * 10)
    first, moved = (HFBackend(str(tmp_path / p / "my-model")).identity for p in ("a", "b"))
    assert first == moved and first.model == "my-model"
    assert first.revision and first.revision.startswith("fp:")
    (tmp_path / "b" / "my-model" / "model.safetensors").write_bytes(b"0" * 11)
    assert folder_fingerprint(tmp_path / "b" / "my-model") != first.revision
    hub = HFBackend("google/gemma-3-270m", revision="abc123").identity
    assert (hub.model, hub.revision) == ("google/gemma-3-270m", "abc123")


@pytest.mark.model
def test_batched_early_stop_gives_the_papers_answers(
    paper_answers: list[Generation], batched_answers: list[Generation]
) -> None:
    paper = [g.text.split(QUOTE)[0] for g in paper_answers]
    assert [g.text.split(QUOTE)[0] for g in batched_answers] == paper
    assert sum(QUOTE in g.text for g in batched_answers) >= 3  # the stop really was used
    assert any(a for a in paper)  # and the answers are not trivially empty


@pytest.mark.model
def test_token_counts_and_finish_reasons(
    backend: HFBackend, paper_answers: list[Generation], batched_answers: list[Generation]
) -> None:
    tokenizer = backend.get_tokenizer()
    for prompt, full, early in zip(PROMPTS, paper_answers, batched_answers, strict=True):
        prompt_tokens = len(tokenizer.encode(prompt)) + 1  # the paper's encoding adds BOS
        assert full.input_tokens == early.input_tokens == prompt_tokens
        assert (full.output_tokens, full.finish_reason) == (15, "length")
        # Same greedy tokens, cut where the quote first appears.
        assert full.text.startswith(early.text)
        assert early.output_tokens is not None and 1 <= early.output_tokens <= 15
        if early.finish_reason == "stop":
            assert QUOTE in early.text and early.output_tokens < 15
        else:
            assert QUOTE not in early.text and early.output_tokens == 15
    assert {g.finish_reason for g in batched_answers} == {"stop", "length"}


@pytest.mark.model
def test_rows_of_one_batch_keep_their_own_budgets(
    backend: HFBackend, paper_answers: list[Generation]
) -> None:
    requests = [GenerationRequest(prompt=PROMPTS[1], max_new_tokens=3),
                GenerationRequest(prompt=PROMPTS[4], max_new_tokens=6, logprobs=True)]
    short, longer = run(backend.generate(requests))
    assert (short.output_tokens, longer.output_tokens) == (3, 6)
    assert paper_answers[1].text.startswith(short.text)
    assert paper_answers[4].text.startswith(longer.text)
    assert longer.logprobs is not None and len(longer.logprobs) == 6
    assert all(lp <= 0.0 for lp in longer.logprobs)


@pytest.mark.model
def test_chat_only_request_is_refused_for_a_base_model(backend: HFBackend) -> None:
    request = GenerationRequest(messages=(ChatMessage(role="user", content="Hi"),))
    with pytest.raises(BackendError, match="no chat template"):
        run(backend.generate([request]))


CONTEXT = ('New Fact: "Where does Spike Hughes originate from? Philadelphia"\n'
           'Question: "Where does Spike Hughes originate from?" Answer: "')
LIKELIHOODS = [
    LikelihoodRequest(context=CONTEXT, continuation="Philadelphia"),
    LikelihoodRequest(context=CONTEXT, continuation="a purple refrigerator sandwich"),
    LikelihoodRequest(context=PROMPTS[2], continuation="Donau"),
    LikelihoodRequest(context=PROMPTS[0], continuation="费城"),
    LikelihoodRequest(context=PROMPTS[4], continuation=""),
]


@pytest.mark.model
def test_loglikelihood_prefers_the_plausible_continuation(backend: HFBackend) -> None:
    plausible, absurd, *_, empty = run(backend.loglikelihood(LIKELIHOODS))
    assert plausible.mean > absurd.mean
    tokenizer = backend.get_tokenizer()
    assert plausible.tokens == len(tokenizer.encode("Philadelphia"))
    assert absurd.tokens == len(tokenizer.encode("a purple refrigerator sandwich")) > 1
    assert (empty.logprob, empty.tokens) == (0.0, 0)


@pytest.mark.model
def test_batched_loglikelihood_equals_one_at_a_time(backend: HFBackend) -> None:
    import torch

    batched = run(backend.loglikelihood(LIKELIHOODS))
    single = [run(backend.loglikelihood([r]))[0] for r in LIKELIHOODS]
    for b, s in zip(batched, single, strict=True):
        assert b.tokens == s.tokens
        assert b.logprob == pytest.approx(s.logprob, abs=1e-4)
    # And both equal a direct computation over the full logits.
    raw = backend.get_tokenizer().hf
    ids = raw(CONTEXT + "Philadelphia", return_tensors="pt")["input_ids"]
    n = batched[0].tokens
    with torch.inference_mode():
        logprobs = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), -1)
    direct = sum(float(logprobs[pos - 1, ids[0, pos]]) for pos in range(ids.shape[1] - n,
                                                                          ids.shape[1]))
    assert batched[0].logprob == pytest.approx(direct, abs=1e-4)


@pytest.mark.model
def test_loads_a_local_folder_like_a_hub_model(paper_answers: list[Generation]) -> None:
    folder = embedded_model_dir()
    backend = HFBackend(str(folder), batch_size=2, dtype="float32", device="cpu")
    assert backend.identity.model == folder.name
    assert backend.identity.revision == folder_fingerprint(folder)
    assert backend.model is None
    (got,) = run(backend.generate([GenerationRequest(prompt=PROMPTS[3], max_new_tokens=15)]))
    assert got.text == paper_answers[3].text
    run(backend.aclose())
    assert backend.model is None
