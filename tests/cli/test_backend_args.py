"""The backend flags: --base-url (repeatable: a fleet) and the likelihood check through a
server, from the command line, against real servers where one is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_errors import eval_args

from mike_sdk.cli.main import main


def openai_args(data_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    args = eval_args(data_dir, tmp_path, *extra)
    args[args.index("mock")] = "openai"
    return [*args, "--model", "smollm2", "--backend-option", "api_key=unused"]


@pytest.mark.parametrize(("extra", "expected"), [
    (("--base-url", "gpu1:8000/v1", "--base-url", "http://gpu2:8000/v1"),
     "must start with http:// or https:// (e.g. http://gpu1:8000/v1)"),
    (("--base-url", "http://a/v1", "--backend-option", "base_url=http://b/v1"),
     "give --base-url or --backend-option base_url=..., not both."),
    (("--backend-option", "likelihood=echo"), "needs mode=completions"),
    (("--backend-option", "fleet=/nonexistent/fleet.toml"),
     "Fleet file /nonexistent/fleet.toml not found"),
])
def test_bad_backend_flags_are_one_line(data_dir: Path, tmp_path: Path, extra: tuple[str, ...],
                                        expected: str, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    assert main(openai_args(data_dir, tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mike: error: ") and expected in err[-1], err[-1]


def test_a_fleet_is_for_openai_compatible_servers(data_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = openai_args(data_dir, tmp_path, "--base-url", "http://a:1", "--base-url",
                       "http://b:1")
    args[args.index("openai")] = "anthropic"
    assert main(args) == 2
    assert "several base URLs (a fleet) are for OpenAI-compatible servers" in \
        capsys.readouterr().err


def test_a_fleet_run_records_one_model_identity(llama: str, data_dir: Path, tmp_path: Path
                                                ) -> None:
    # The same server twice is still a fleet of two: the run reads as the fleet's model.
    args = openai_args(data_dir, tmp_path, "--base-url", llama, "--base-url", llama,
                       "--strategy", "zero-shot", "--limit", "1")
    assert main(args) == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["backend"]["model"] == "smollm2@fleet"


def test_wrong_server_prompt_logprobs_stop_the_run(llama: str, data_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # llama.cpp's server (real) returns wrong prompt log-probabilities: refused, with the
    # figures, instead of scored.
    args = openai_args(data_dir, tmp_path, "--base-url", llama, "--backend-option",
                       "mode=completions", "--backend-option", "likelihood=echo",
                       "--strategy", "zero-shot", "--limit", "1")
    args[args.index("zsre")] = "counterfact"
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "returns wrong prompt log-probabilities" in err
    assert "--no-likelihood" in err and "log-probability -" in err
    # What was generated is kept: the same run without the check reuses every answer.
    assert main([*args, "--no-likelihood", "--run-dir", str(tmp_path / "run2")]) == 0
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert summary["totals"]["backend_calls_this_session"] == 0
