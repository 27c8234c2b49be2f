"""Provider presets for OpenAI-compatible APIs."""

from __future__ import annotations

import pytest

from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.errors import ConfigError
from mike_sdk.providers.presets import get_preset, presets


def test_every_preset_has_an_https_url_or_is_local() -> None:
    for name, preset in presets().items():
        assert preset.base_url.startswith(("https://", "http://localhost")), name
        assert preset.key_env.endswith("_KEY") and preset.docs


def test_a_preset_sets_the_url_and_the_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "deepseek-key-SECRET")
    backend = OpenAIBackend("deepseek-reasoner", preset="deepseek")
    assert backend.identity.model == "deepseek-reasoner@api.deepseek.com"
    assert backend.key_env == "DEEPSEEK_API_KEY" and backend._key() == "deepseek-key-SECRET"
    assert backend.profile.name == "openai/deepseek-reasoner"
    assert "SECRET" not in repr(backend)
    # An explicit base URL wins over the preset's.
    assert OpenAIBackend("m", preset="vllm", base_url="http://gpu7:8000/v1"
                         ).identity.model == "m@gpu7:8000"


def test_local_servers_need_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    assert OpenAIBackend("m", preset="vllm")._key() == "EMPTY"
    monkeypatch.setenv("VLLM_API_KEY", "token")
    assert OpenAIBackend("m", preset="vllm")._key() == "token"


def test_unknown_preset_suggests_the_nearest() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'openrouter'"):
        get_preset("open-router")
