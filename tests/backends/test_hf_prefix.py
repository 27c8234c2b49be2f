"""Shared-prefix reuse in the ``hf`` backend: the same answers as the plain path, each shared
prefix encoded once, and the plain path wherever reuse cannot be exact."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from mike_sdk.backend import Abilities, Generation, GenerationRequest
from mike_sdk.backends import hf_prefix
from mike_sdk.backends.hf import HFBackend
from mike_sdk.backends.hf_prefix import PrefixReuse, boundaries
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import STRATEGIES

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def seen(g: Generation) -> tuple[object, ...]:
    """What a caller gets from a generation."""
    return g.text, g.finish_reason, g.input_tokens, g.output_tokens


# -- finding shared prefixes (no model) --------------------------------------------------

DEMO_A = "Demonstration A: the capital of France is Paris.\n\n"
DEMO_B = "Demonstration B: the river through Vienna is the Danube.\n\n"
DEMO_C = "Demonstration C: Hamlet was written by Shakespeare.\n\n"


def chars(text: str, special: bool) -> list[int]:
    """A toy tokenizer: one token per character, a BOS id in front."""
    return [1] * special + [ord(c) for c in text]


def plan(reuse: PrefixReuse, texts: list[str],
         tokenize: Any = chars) -> dict[int, str]:
    prompts = [(t, True) for t in texts]
    chosen = reuse.plan(prompts, [tokenize(t, True) for t in texts], tokenize)
    return {i: prefix.key[1] for i, prefix in chosen.items()}


def test_candidate_prefixes_end_after_blank_lines() -> None:
    text = DEMO_A + DEMO_B + 'Question: "?" Answer: "'
    assert boundaries(text) == [len(DEMO_A), len(DEMO_A + DEMO_B)]
    assert boundaries("no blank line") == []
    assert boundaries("ends with one\n\n") == []  # a request keeps a suffix of its own


def test_the_longest_shared_prefix_is_chosen_else_the_longest() -> None:
    texts = [DEMO_A + DEMO_B + "q1", DEMO_A + DEMO_B + "q2", DEMO_A + DEMO_C + "q3",
             DEMO_C + "q4", "q5 has no blank line"]
    # The third shares only DEMO_A with the others; the fourth shares nothing (yet).
    assert plan(PrefixReuse(), texts) == {0: DEMO_A + DEMO_B, 1: DEMO_A + DEMO_B,
                                          2: DEMO_A, 3: DEMO_C}


def test_a_prefix_seen_in_an_earlier_call_is_preferred() -> None:
    reuse = PrefixReuse()
    assert plan(reuse, [DEMO_A + DEMO_B + "q1"]) == {0: DEMO_A + DEMO_B}
    assert plan(reuse, [DEMO_A + DEMO_C + "q2"]) == {0: DEMO_A}
    assert plan(reuse, ["Hi.\n\nq3"]) == {}  # a prefix under 8 tokens is not worth it


def test_a_boundary_the_tokenizer_merges_falls_back() -> None:
    def merging(text: str, special: bool) -> list[int]:  # runs of newlines are one token
        return [0] * special + [hash(t) % 1000 for t in re.findall(r"\n+|[^\n]", text)]

    reuse = PrefixReuse()
    texts = [DEMO_A + "\nq1", DEMO_A + "\nq2", DEMO_A + "q3"]
    assert plan(reuse, texts, merging) == {2: DEMO_A}
    assert reuse.stats.fallback_rows == 2


# -- the real model on real prompts ------------------------------------------------------

def real_prompts(benchmark: Any, strategy: str, languages: str, limit: int,
                 metrics: str = "reliability,generality,locality,portability") -> list[str]:
    config = EvalConfig.model_validate({"tasks": "zsre", "languages": languages,
                                        "strategy": strategy, "limit": limit,
                                        "metrics": metrics})
    planner = Planner(benchmark, config, STRATEGIES.create(strategy),
                      Abilities(completion=True, batch_size=8))
    return [w.request.prompt or "" for w in planner]


@pytest.fixture(scope="module")
def prompts(benchmark: Any) -> list[str]:
    """8 eight-shot prompts (Latin, Cyrillic, CJK, Devanagari: pairs sharing their
    demonstrations), then 8 one-shot prompts in Arabic and 8 in Greek."""
    found = (real_prompts(benchmark, "8-shot-metric-specific", "de,ru,zh,hi", 1,
                          "reliability,generality")
             + real_prompts(benchmark, "one-shot", "ar,el", 2))
    assert len(found) == 24
    return found


def sharing(loaded: HFBackend, prefix_reuse: bool = True) -> HFBackend:
    """A fresh backend (empty prefix cache, zero counts) on the loaded model."""
    backend = HFBackend(batch_size=8, prefix_reuse=prefix_reuse)
    backend.model, backend._tokenizer = loaded._loaded()[0], loaded._tokenizer
    return backend


@pytest.fixture(scope="module")
def loaded(hf_backend: HFBackend) -> Iterator[HFBackend]:
    """Reuse off, on the session's model (conftest.py)."""
    backend = sharing(hf_backend, prefix_reuse=False)
    yield backend
    run(backend.aclose())


def lengths(backend: HFBackend, prompts: list[str]) -> list[int]:
    tokenizer = backend.get_tokenizer().hf
    return [len(tokenizer(p)["input_ids"]) for p in prompts]


def requests_of(prompts: list[str]) -> list[GenerationRequest]:
    # Two rows ask for log-probabilities: they come from the same logits.
    return [GenerationRequest(prompt=p, stop=('"',), max_new_tokens=15, logprobs=i % 12 == 3)
            for i, p in enumerate(prompts)]


@pytest.fixture(scope="module")
def plain(loaded: HFBackend, prompts: list[str]) -> list[Generation]:
    """Today's path: all prompts in one call, reuse off (each prompt run whole)."""
    before = loaded.prefix_stats.prompt_tokens
    answers = run(loaded.generate(requests_of(prompts)))
    assert loaded.prefix_stats.prompt_tokens - before == sum(lengths(loaded, prompts))
    assert loaded.prefix_stats.reused_rows == 0
    return answers


@pytest.mark.model
def test_reuse_gives_the_plain_paths_answers(loaded: HFBackend, prompts: list[str],
                                             plain: list[Generation]) -> None:
    backend = sharing(loaded)
    reused = run(backend.generate(requests_of(prompts)))
    assert [seen(g) for g in reused] == [seen(g) for g in plain]
    assert {g.finish_reason for g in reused} >= {"stop"}  # early stop at the quote still works
    for a, b in zip(plain, reused, strict=True):
        if a.logprobs is not None:
            assert b.logprobs == pytest.approx(a.logprobs, abs=1e-3)
    stats = backend.prefix_stats
    # Every row shares its demonstrations: 4 eight-shot blocks, 2 one-shot ones.
    assert (stats.reused_rows, stats.prefix_encodes, stats.fallback_rows) == (24, 6, 0)
    # Each prefix ran once, then every row's suffix: the rest came from the prefix caches.
    prefixes = list(backend._prefixes._entries.values())
    shared = [max(len(q.ids) for q in prefixes if p.startswith(q.key[1])) for p in prompts]
    assert stats.prompt_tokens == (sum(lengths(backend, prompts)) - sum(shared)
                                   + sum(len(q.ids) for q in prefixes))


@pytest.mark.model
def test_an_encoded_prefix_is_reused_by_later_calls(loaded: HFBackend, prompts: list[str],
                                                    plain: list[Generation]) -> None:
    import torch

    backend = sharing(loaded)
    arabic = list(range(8, 16))  # one-shot, one demonstration block
    first, later = arabic[:4], arabic[4:]
    run(backend.generate([requests_of(prompts)[i] for i in first]))
    assert (backend.prefix_stats.prefix_encodes, backend.prefix_stats.prefix_hits) == (1, 0)
    widths: list[int] = []

    def record(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        widths.append(int(kwargs["input_ids"].shape[1]))

    hook = backend.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        got = run(backend.generate([requests_of(prompts)[i] for i in later]))
    finally:
        hook.remove()
    assert [seen(g) for g in got] == [seen(plain[i]) for i in later]
    assert (backend.prefix_stats.prefix_encodes, backend.prefix_stats.prefix_hits) == (1, 4)
    # No forward pass of the later call went over the prefix: one over the suffixes, then
    # one token per step.
    (prefix,) = backend._prefixes._entries.values()
    suffixes = [n - len(prefix.ids) for n in lengths(backend, [prompts[i] for i in later])]
    assert widths[0] == max(suffixes) and set(widths[1:]) == {1}
    assert isinstance(prefix.layers, list) and isinstance(prefix.layers[0][0], torch.Tensor)


@pytest.mark.model
def test_one_request_per_call_reuses_the_first_ones_prefix(
        loaded: HFBackend, prompts: list[str], plain: list[Generation]) -> None:
    backend = sharing(loaded)
    greek = list(range(16, 19))
    got = [run(backend.generate([requests_of(prompts)[i]]))[0] for i in greek]
    assert [seen(g) for g in got] == [seen(plain[i]) for i in greek]
    stats = backend.prefix_stats
    assert (stats.reused_rows, stats.prefix_encodes, stats.prefix_hits) == (3, 1, 2)


@pytest.mark.model
def test_a_boundary_the_tokenizer_merges_takes_the_plain_path(
        loaded: HFBackend, prompts: list[str]) -> None:
    # A third newline after the demonstration: Gemma encodes "\n\n\n" as one token, so the
    # demonstration's own tokens (ending in "\n\n") do not start the prompt's.
    merged = [p.replace("\n\nNew Fact", "\n\n\nNew Fact") for p in prompts[8:10]]
    tokenizer = loaded.get_tokenizer().hf
    head = merged[0][: merged[0].index("\n\n") + 2]
    assert tokenizer(merged[0])["input_ids"][: len(tokenizer(head)["input_ids"])] \
        != tokenizer(head)["input_ids"]
    backend = sharing(loaded)
    got = run(backend.generate(requests_of(merged)))
    assert [seen(g) for g in got] == [seen(g) for g in run(loaded.generate(requests_of(merged)))]
    stats = backend.prefix_stats
    assert (stats.fallback_rows, stats.reused_rows, stats.prefix_encodes) == (2, 0, 0)


@pytest.mark.model
def test_batches_that_would_reach_the_sliding_window_take_the_plain_path(
        loaded: HFBackend, prompts: list[str], plain: list[Generation],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_prefix, "_sliding_window", lambda model: 64)
    backend = sharing(loaded)
    got = run(backend.generate(requests_of(prompts)[20:24]))
    assert [seen(g) for g in got] == [seen(g) for g in plain[20:24]]
    stats = backend.prefix_stats
    assert (stats.fallback_rows, stats.reused_rows) == (4, 0)
    assert stats.prompt_tokens == sum(lengths(backend, prompts[20:24]))
