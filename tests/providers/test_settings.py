"""Request settings: reasoning defaults, checks, and the cache tag."""

from __future__ import annotations

import pytest

from mike_sdk.errors import ConfigError
from mike_sdk.providers.profiles import ProfileTable, Provider
from mike_sdk.providers.settings import RequestSettings, settings_for

TABLE = ProfileTable.shipped()


def settings(provider: Provider, model: str, effort: str | None = None,
             budget: int = 1024) -> RequestSettings:
    return settings_for(TABLE.find(provider, model), reasoning_effort=effort,
                        reasoning_budget=budget, option_hint="(hint)")


def test_reasoning_models_get_the_lowest_effort_and_a_budget() -> None:
    s = settings("openai", "gpt-5-mini")
    assert (s.reasoning_effort, s.reasoning_budget, s.sampling) == ("minimal", 1024,
                                                                   "provider-default")
    assert settings("openai", "o4-mini").reasoning_effort == "low"
    assert settings("openai", "gpt-5.1").reasoning_effort == "none"
    plain = settings("openai", "gpt-4.1-mini")
    assert plain.reasoning_effort is None and plain.reasoning_budget is None
    assert plain.sampling == "greedy"


def test_claude_thinks_only_when_asked() -> None:
    assert settings("anthropic", "claude-sonnet-4-6").reasoning_budget is None
    thinking = settings("anthropic", "claude-sonnet-4-6", "medium", 4000)
    assert thinking.reasoning_budget == 4000 and thinking.sampling == "provider-default"
    assert not thinking.prefill
    # Anthropic's smallest thinking budget is 1024 tokens.
    assert settings("anthropic", "claude-haiku-4-5", "on", 10).reasoning_budget == 1024


def test_an_effort_the_model_refuses_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'minimal' is not accepted by profile "
                       r"'openai/o-series'; valid: low, medium, high. \(hint\)"):
        settings("openai", "o4-mini", "minimal")
    with pytest.raises(ConfigError, match="no reasoning control"):
        settings("openai", "gpt-4.1-mini", "low")


def test_the_tag_changes_with_what_changes_answers() -> None:
    tags = {settings("openai", "gpt-5-mini").tag(),
            settings("openai", "gpt-5-mini", "low").tag(),
            settings("openai", "gpt-5-mini", budget=2048).tag(),
            settings("openai", "gpt-4.1-mini").tag()}
    assert len(tags) == 4
    assert settings("openai", "gpt-4.1-mini").tag() == "greedy,stop"
