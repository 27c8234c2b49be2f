"""Ordinary mistakes get one line on stderr and exit 2; runs that end with errors say so.

Real files and real processes; the mock backend stands in for a model where the
behaviour under test is the command line's own.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mike_sdk.cli.main import main


def eval_args(data_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
            "--languages", "de", "--limit", "2", "--run-dir", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--language-id",
            "script", *extra]


@pytest.mark.parametrize(("extra", "expected"), [
    (("--limit", "0"), "--limit: Input should be greater than or equal to 1 (got 0)."),
    (("--limit", "-1"), "--limit: Input should be greater than or equal to 1 (got -1)."),
    (("--batch-size", "0"), "--batch-size must be at least 1, got 0."),
    (("--strategy-option", "foo=1"), "does not take these options"),
    (("--backend-option", "answr=fixed"), "answr: Extra inputs are not permitted (got 'fixed')"),
    (("--concurrency", "0"), "--concurrency: Input should be greater than or equal to 1"),
    (("--processes", "0"), "--processes 0: give 1 or more (1: this process only"),
])
def test_bad_options_are_one_line(data_dir: Path, tmp_path: Path, extra: tuple[str, ...],
                                  expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(eval_args(data_dir, tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert expected in err[-1] and err[-1].startswith("mike: error: ")
    assert not any("Traceback" in line for line in err)


def test_an_unwritable_run_folder_is_one_line(data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = eval_args(data_dir, tmp_path)
    args[args.index("--run-dir") + 1] = str(blocker / "run")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("mike: error: cannot use") and str(blocker) in err


def test_a_run_with_refused_requests_exits_1_and_says_how_many(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = ("--backend-option", "failure_rate=0.4", "--backend-option",
               "failure_kinds=bad_request", "--backend-option", "failures_per_request=none",
               "--backend-option", "batch_size=1", "--no-likelihood")
    assert main(eval_args(data_dir, tmp_path, *failing)) == 1
    err = capsys.readouterr().err
    assert "requests were refused (error rows, scored 0)" in err and "--retry-errors" in err
    # Fixed: the errors are sent again and the run ends clean.
    assert main(eval_args(data_dir, tmp_path, "--retry-errors", "--no-likelihood",
                          "--backend-option", "batch_size=1")) == 0


def test_an_unreachable_server_fails_in_seconds_naming_it(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = eval_args(data_dir, tmp_path, "--backend-option",
                     f"base_url=http://127.0.0.1:{port}/v1", "--backend-option", "api_key=k")
    args[args.index("mock")] = "openai"
    args[args.index("--backend") + 2:args.index("--backend") + 2] = ["--model", "gpt-4.1-mini"]
    started = time.monotonic()
    assert main(args) == 2
    assert time.monotonic() - started < 15
    err = capsys.readouterr().err
    assert f"Could not reach http://127.0.0.1:{port}/v1" in err.splitlines()[-1]
    # Each retry was logged as a warning, naming the server.
    retries = [r.getMessage() for r in caplog.records if r.name == "mike_sdk.calls.retry"]
    assert retries and all(f"127.0.0.1:{port}" in m and "(attempt " in m for m in retries)


def test_a_base_url_without_scheme_is_refused(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path, data_dir: Path) -> None:
    args = eval_args(data_dir, tmp_path, "--backend-option", "base_url=localhost:8000/v1")
    args[args.index("mock")] = "openai"
    args[args.index("--backend") + 2:args.index("--backend") + 2] = ["--model", "m"]
    assert main(args) == 2
    assert "must start with http:// or https://" in capsys.readouterr().err


def test_plain_progress_lines_when_stderr_is_not_a_terminal(data_dir: Path,
                                                            tmp_path: Path) -> None:
    args = eval_args(data_dir, tmp_path)
    args.remove("--no-progress")
    done = subprocess.run([sys.executable, "-m", "mike_sdk.cli.main", *args],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stderr and "\r" not in done.stderr
    assert "progress: 8/8 items written (100%)" in done.stderr


@pytest.mark.parametrize(("model", "expected"), [
    ("/nonexistent/model", "Model folder /nonexistent/model does not exist"),
    ("FOLDER", "is not a model folder: it has no config.json"),
])
def test_a_model_path_that_is_no_model_is_one_line(data_dir: Path, tmp_path: Path, model: str,
                                                   expected: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("weights elsewhere")
    args = eval_args(data_dir, tmp_path)
    args[args.index("mock")] = "hf"
    args[args.index("--backend") + 2:args.index("--backend") + 2] = [
        "--model", str(folder) if model == "FOLDER" else model]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert expected in err[-1] and len([e for e in err if e.startswith("mike:")]) == 1
