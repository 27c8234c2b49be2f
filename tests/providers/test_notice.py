"""A hosted model's name is told back with the profile and price it got, and a near
miss is named (``claude-sonet-4-6``); names of one's own still run."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from mike_sdk.calls.pricing import PriceTable
from mike_sdk.cli.main import main
from mike_sdk.providers.notice import model_notice
from mike_sdk.providers.profiles import ProfileTable
from mike_sdk.providers.settings import settings_for


def dry_run(data_dir: Path, tmp_path: Path, backend: str, model: str) -> list[str]:
    return ["eval", "--backend", backend, "--model", model, "--base-url",
            "http://127.0.0.1:9/v1", "--data-dir", str(data_dir), "--tasks", "zsre",
            "--languages", "de", "--limit", "1", "--run-dir", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--dry-run"]


def notices(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("mike: model ")]


def test_a_misspelt_model_is_named_with_the_near_miss(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert main(dry_run(data_dir, tmp_path, "anthropic", "claude-sonet-4-6")) == 0
    [line] = notices(capsys.readouterr().err)
    assert "profile anthropic/unknown (sampled at the provider's default temperature)" in line
    assert "no price (cost not shown" in line
    assert "Did you mean 'claude-sonnet-4-6'?" in line


def test_a_known_model_gets_its_profile_and_price_and_no_hint(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(dry_run(data_dir, tmp_path, "openai", "gpt-4.1-mini")) == 0
    [line] = notices(capsys.readouterr().err)
    assert line == ("mike: model gpt-4.1-mini@127.0.0.1:9: profile openai/gpt-4 (greedy), "
                    "priced as gpt-4.1-mini ($0.4 input, $1.6 output per million tokens, "
                    "as of 2026-03).")


def test_local_models_get_no_notice(data_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = dry_run(data_dir, tmp_path, "mock", "mock")
    del args[args.index("--base-url"):args.index("--base-url") + 2]
    assert main(args) == 0
    assert notices(capsys.readouterr().err) == []


@pytest.mark.parametrize(("provider", "model", "meant"), [
    ("anthropic", "claude-sonet-4-6", "claude-sonnet-4-6"),
    ("openai", "gpt-5-mni", "gpt-5-mini"),  # priced as gpt-5 by prefix: doubtful
    ("anthropic", "us.anthropic.claude-opus-4-7-v1:0", None),  # a cloud id of a known model
    ("openai", "gpt-5.1", None),  # a newer version with a profile of its own
    ("openai", "gpt-4o-mini-2024-07-18", None),  # a dated snapshot
    ("openai", "my-finetune-v3", None),  # names of one's own
    ("openai", "smollm2", None),
])
def test_the_hint_comes_only_for_doubtful_names(provider: Literal["openai", "anthropic"],
                                                model: str, meant: str | None) -> None:
    table, prices = ProfileTable.shipped(), PriceTable()
    profile = table.find(provider, model)
    settings = settings_for(profile, reasoning_effort=None, reasoning_budget=1024,
                            option_hint="")
    line = model_notice(model, profile, settings, table, prices)
    assert line.startswith(f"model {model}: profile {profile.name} (")
    assert (f"Did you mean {meant!r}?" in line) if meant else ("Did you mean" not in line)
