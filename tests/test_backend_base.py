"""The Backend base class: two members to write, defaults for the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from mike_sdk.backend import (
    BACKENDS,
    Abilities,
    Backend,
    Generation,
    GenerationRequest,
    Identity,
    LikelihoodRequest,
)
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient


class Shout(Backend):
    """Upper-cases the prompt: the least a backend can be."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def identity(self) -> Identity:
        return Identity(kind="shout-test", model="shout")

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.calls += 1
        return [Generation(text=(r.prompt or "").upper(), finish_reason="stop")
                for r in requests]


def test_identity_and_generate_are_enough_end_to_end(tmp_path: Path) -> None:
    backend = Shout()
    requests = [GenerationRequest(prompt="bonjour"), GenerationRequest(prompt="hallo")]
    with ResponseCache(tmp_path / "cache") as cache:
        answered = ModelClient(backend, cache=cache).generate_sync(requests)
        assert [a.generation.text for a in answered if a.generation] == ["BONJOUR", "HALLO"]
        assert backend.calls == 2  # batch size 1 by default
        again = ModelClient(backend, cache=cache).generate_sync(requests)
    assert all(a.cached for a in again) and backend.calls == 2


def test_defaults() -> None:
    backend = Shout()
    assert backend.abilities == Abilities()
    assert (backend.abilities.completion, backend.abilities.batch_size,
            backend.abilities.max_concurrency) == (True, 1, 1)
    assert backend.get_tokenizer() is None
    asyncio.run(backend.aclose())
    asyncio.run(backend.release_connections())
    request = LikelihoodRequest(context="The capital of France is", continuation=" Paris")
    with pytest.raises(NotImplementedError, match="Shout does not score continuations"):
        asyncio.run(backend.loglikelihood([request]))


def test_identity_and_generate_are_required() -> None:
    class NoGenerate(Backend):
        @property
        def identity(self) -> Identity:
            return Identity(kind="x", model="x")

    class NoIdentity(Backend):
        async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
            return []

    with pytest.raises(TypeError, match="generate"):
        NoGenerate()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="identity"):
        NoIdentity()  # type: ignore[abstract]


@pytest.mark.parametrize("name", ["hf", "openai", "anthropic"])
def test_shipped_backends_subclass_the_base(name: str) -> None:
    factory = BACKENDS.get(name)
    assert isinstance(factory, type) and issubclass(factory, Backend)
