"""The model profile table: which entry each current model gets, and user files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mike_sdk.errors import ConfigError
from mike_sdk.providers.profiles import ModelProfile, ProfileTable, Provider


@pytest.mark.parametrize(("provider", "model", "entry"), [
    ("openai", "gpt-5-mini", "openai/gpt-5"),
    ("openai", "gpt-5-nano-2025-08-07", "openai/gpt-5"),
    ("openai", "gpt-5-chat-latest", "openai/gpt-5-chat"),
    ("openai", "gpt-5.1", "openai/gpt-5.1+"),
    ("openai", "gpt-5-pro", "openai/gpt-5-pro"),
    ("openai", "o4-mini", "openai/o-series"),
    ("openai", "o3", "openai/o-series"),
    ("openai", "gpt-4.1-mini", "openai/gpt-4"),
    ("openai", "openai/gpt-4o-mini", "openai/gpt-4"),  # OpenRouter's naming
    ("openai", "deepseek-reasoner", "openai/deepseek-reasoner"),
    ("openai", "meta-llama/Llama-3.1-8B", "openai/compatible"),
    # A fine-tune takes its base model's requests (a reasoning model refuses temperature).
    ("openai", "ft:gpt-5-mini-2025-08-07:acme::abc123", "openai/gpt-5"),
    ("openai", "ft:gpt-4.1-mini-2025-04-14:acme:support:xyz", "openai/gpt-4"),
    ("openai", "ft:", "openai/compatible"),
    ("anthropic", "claude-haiku-4-5-20251001", "anthropic/claude-4.5-and-earlier"),
    ("anthropic", "claude-sonnet-4-6", "anthropic/claude-4.6"),
    ("anthropic", "claude-opus-4-7", "anthropic/claude-opus-4.7+"),
    ("anthropic", "us.anthropic.claude-opus-4-7-v1:0", "anthropic/claude-opus-4.7+"),
    ("anthropic", "claude-sonnet-4-6@20260101", "anthropic/claude-4.6"),
    ("anthropic", "claude-opus-5", "anthropic/claude-5"),
    ("anthropic", "claude-next-unreleased", "anthropic/unknown"),
])
def test_each_family_gets_its_entry(provider: Provider, model: str, entry: str) -> None:
    assert ProfileTable.shipped().find(provider, model).name == entry


def test_shipped_rules_match_the_providers_documentation() -> None:
    table = ProfileTable.shipped()
    reasoning = table.find("openai", "gpt-5-mini")
    assert not reasoning.sampling and not reasoning.stop
    assert reasoning.token_limit == "max_completion_tokens" and reasoning.thinks_by_default
    assert reasoning.efforts[0] == "minimal"
    assert table.find("openai", "o4-mini").efforts[0] == "low"
    newer = table.find("anthropic", "claude-sonnet-4-6")
    assert newer.sampling and not newer.prefill and newer.api_version == "2023-06-01"
    latest = table.find("anthropic", "claude-opus-4-7")
    assert not latest.sampling and not latest.prefill and latest.api_version is None
    assert table.find("anthropic", "claude-haiku-4-5").prefill
    # Every entry says where its rules come from.
    assert all(p.source for p in table.entries)


def test_a_user_file_comes_first_and_replaces_by_name(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    mine = [{"name": "openai/my-finetune", "provider": "openai",
             "models": ["ft:gpt-4.1-mini*"], "sampling": False, "stop": True},
            {"name": "openai/gpt-5", "provider": "openai", "models": ["gpt-5*"],
             "sampling": False, "stop": False, "token_limit": "max_completion_tokens",
             "reasoning": "openai-effort", "efforts": ["low"], "thinks_by_default": True}]
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"profiles": mine}))
    table = ProfileTable.load(path)
    assert table.find("openai", "ft:gpt-4.1-mini:org::abc").name == "openai/my-finetune"
    assert table.find("openai", "gpt-5-mini").efforts == ("low",)
    assert [p.name for p in table.entries].count("openai/gpt-5") == 1
    monkeypatch.setenv("MIKE_PROFILES", str(path))
    assert ProfileTable.load().find("openai", "gpt-5-mini").efforts == ("low",)


def test_toml_user_file(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[[profiles]]\nname = "anthropic/proxy"\nprovider = "anthropic"\n'
                    'models = ["proxy-*"]\nsampling = true\nstop = true\nprefill = true\n')
    assert ProfileTable.load(path).find("anthropic", "proxy-claude").prefill


@pytest.mark.parametrize(("content", "expected"), [
    ('[{"name": "x", "provider": "openai", "models": ["a"], "sampling": "maybe", '
     '"stop": true}]', r"entry 1: sampling: .*valid boolean"),
    ('[{"name": "x", "provider": "openai", "models": ["a"], "stop": true}]',
     "entry 1: sampling: Field required"),
    ('[{"name": "x", "provider": "azure", "models": ["a"], "sampling": true, "stop": true}]',
     "entry 1: provider"),
    ('[{"name": "x", "provider": "openai", "models": ["a"], "sampling": true, "stop": true, '
     '"temperature": 0}]', "entry 1: temperature: Extra inputs"),
    ('{"gpt-5": {}}', "expected a list of entries"),
    ("[not json", "not valid JSON or TOML"),
])
def test_bad_user_files_name_the_entry_and_field(tmp_path: Path, content: str,
                                                 expected: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=expected) as caught:
        ProfileTable.load(path)
    assert str(path) in str(caught.value)


def test_missing_file_and_unknown_entry_name() -> None:
    with pytest.raises(ConfigError, match="not found"):
        ProfileTable.load("/nonexistent/profiles.json")
    with pytest.raises(ConfigError, match="Did you mean 'openai/gpt-5'"):
        ProfileTable.shipped().find("openai", "x", name="openai/gpt5")


def test_except_models_leaves_names_out() -> None:
    profile = ModelProfile(name="p", provider="openai", models=("gpt-5*",),
                           except_models=("*-chat*",), sampling=False, stop=False)
    assert profile.matches("GPT-5-mini") and not profile.matches("gpt-5-chat-latest")


def test_a_users_fine_tune_entry_wins_and_fine_tunes_are_not_priced_as_their_base(
        tmp_path: Path) -> None:
    from mike_sdk.calls.pricing import PriceTable

    mine = tmp_path / "profiles.json"
    mine.write_text(json.dumps([{"name": "openai/mine", "provider": "openai",
                                 "models": ["ft:gpt-4.1-mini*"], "sampling": False,
                                 "stop": False}]))
    table = ProfileTable.load(mine)
    assert table.find("openai", "ft:gpt-4.1-mini-2025-04-14:acme:s:x").name == "openai/mine"
    prices = PriceTable.load()
    assert prices.price("gpt-4.1-mini") is not None
    assert prices.price("ft:gpt-4.1-mini-2025-04-14:acme:s:x") is None  # billed at its own rates
