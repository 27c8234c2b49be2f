"""Azure OpenAI: construction and errors (its wire is checked in test_strict_families.py)."""

from __future__ import annotations

import asyncio

import pytest

from mike_sdk.backend import GenerationRequest
from mike_sdk.backends.azure_openai import AzureOpenAIBackend
from mike_sdk.errors import ConfigError


def test_the_model_picks_the_profile_and_the_deployment_is_the_revision(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    backend = AzureOpenAIBackend("o4-mini", deployment="reasoner",
                                 endpoint="https://res.openai.azure.com", api_key="k-SECRET")
    assert backend.profile.name == "openai/o-series" and backend.api_version
    assert backend.payload(GenerationRequest(prompt="q"))["model"] == "reasoner"
    assert backend.identity.model == "o4-mini@res.openai.azure.com"
    assert "SECRET" not in repr(backend)


def test_no_endpoint_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    backend = AzureOpenAIBackend("gpt-4.1-mini", api_key="k")

    async def go() -> None:
        await backend.generate([GenerationRequest(prompt="q")])

    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        asyncio.run(go())
