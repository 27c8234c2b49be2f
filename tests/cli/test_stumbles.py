"""The newcomer's stumbles of issue 18: a closed pipe, a file where a folder goes, an
export into a missing folder; each exits quietly or with one line that fits the command."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mike_sdk.cli.main import main


def mock_eval(data_dir: Path, run_dir: Path, cache_dir: Path) -> list[str]:
    return ["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
            "--languages", "de", "--limit", "1", "--run-dir", str(run_dir), "--cache-dir",
            str(cache_dir), "--no-progress", "--language-id", "script"]


def test_a_reader_that_stops_early_ends_the_command_quietly(data_dir: Path) -> None:
    """``mike data info | head -2``: no error line, the SIGPIPE status of a pipe."""
    mike = Path(sys.executable).with_name("mike")  # the installed command
    proc = subprocess.Popen([str(mike), "data", "info", "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything was written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_a_run_dir_that_is_a_file_says_so(data_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "run"
    blocker.write_text("a file")
    assert main(mock_eval(data_dir, blocker, tmp_path / "cache")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"mike: error: cannot use {blocker}: a file is where a folder is needed. "
                   "Choose another folder; finished rows are kept.")


def test_export_into_a_missing_folder_names_it(data_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(mock_eval(data_dir, run, tmp_path / "cache")) == 0
    out = tmp_path / "missing" / "table.csv"
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mike: error: --out {out}: the folder {out.parent} does not exist; "
                   "create it or choose another --out."]
    assert main(["export", str(run), "--out", str(tmp_path / "table.csv")]) == 0


def test_an_unreachable_server_is_warned_about_once(
        data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = mock_eval(data_dir, tmp_path / "run", tmp_path / "cache")
    args[args.index("mock")] = "openai"
    args += ["--model", "gpt-4.1-mini", "--base-url", f"http://127.0.0.1:{port}/v1",
             "--backend-option", "api_key=k", "--limit", "2"]  # 8 requests in flight
    assert main(args) == 2
    warned = [r for r in caplog.records
              if r.name == "mike_sdk.calls.retry" and r.levelno >= logging.WARNING]
    assert len(warned) == 1 and f"127.0.0.1:{port}" in warned[0].getMessage()
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"mike: error: Could not reach http://127.0.0.1:{port}/v1")
