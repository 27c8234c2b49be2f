"""`mike backends --models / --presets` and `mike strategies`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mike_sdk.cli.main import main


def test_models_prints_the_profile_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends", "--models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["profile", "models"]
    gpt5 = next(line for line in lines if line.startswith("openai/gpt-5 "))
    assert "minimal, low, medium, high" in gpt5 and "max_completion_tokens" in gpt5
    assert any(line.startswith("anthropic/claude-4.6") and "2023-06-01" in line
               for line in lines)


def test_models_with_a_user_file_lists_it_first(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"name": "openai/mine", "provider": "openai",
                                 "models": ["mine-*"], "sampling": True, "stop": True}]))
    assert main(["backends", "--models", "--profiles", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("openai/mine")


def test_presets_and_plain_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends", "--presets"]) == 0
    out = capsys.readouterr().out
    assert "deepseek" in out and "https://api.deepseek.com" in out
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "azure-openai" in out and "anthropic-bedrock" in out and "``" not in out
