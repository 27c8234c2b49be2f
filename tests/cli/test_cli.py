"""The ``mike`` command, run as a user runs it (a subprocess), against real files and servers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rows import results_text

from mike_sdk.runfolder.rundir import read_summary

MIKE = [sys.executable, "-m", "mike_sdk.cli.main"]


def mike(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MIKE, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def http_mirror(data_dir: Path) -> Iterator[str]:
    """``python -m http.server`` over the real data: a mirror of the official files."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(data_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(5)


def test_data_download_then_info(http_mirror: str, tmp_path: Path) -> None:
    dest = tmp_path / "bmike53"
    done = mike("data", "download", "--dest", str(dest), "--base-url", http_mirror, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "175 files downloaded" in done.stdout
    again = mike("data", "download", "--dest", str(dest), "--base-url", http_mirror, "--no-progress")
    assert "0 files downloaded" in again.stdout and "175 already present" in again.stdout
    info = mike("data", "info", "--data-dir", str(dest), "--tasks", "zsre")
    assert info.returncode == 0, info.stderr
    he = next(line.split() for line in info.stdout.splitlines() if line.split()[:2] == ["zsre", "he"])
    assert he == ["zsre", "he", "743", "704", "39"]


def test_listing_commands() -> None:
    strategies = mike("strategies").stdout
    assert all(name in strategies for name in ("zero-shot", "one-shot", "8-shot-mixed", "8-shot-metric-specific"))
    backends = [line.split()[0] for line in mike("backends").stdout.splitlines()]
    assert {"hf", "openai", "anthropic"} <= set(backends)


@pytest.mark.parametrize(("args", "message"), [
    (["--strategy", "8-shot-mixd"], "Unknown strategy '8-shot-mixd'. Did you mean '8-shot-mixed'?"),
    (["--languages", "de,klingon"], "Unknown language 'klingon'"),
    (["--tasks", "zsre,counterfacts"], "Unknown task 'counterfacts'. Did you mean 'counterfact'?"),
    (["--backend", "hff"], "Unknown backend 'hff'. Did you mean 'hf'?"),
    (["--backend-option", "batch_size"], "must look like key=value"),
    (["--backend-option", "batch_size=0"], "Invalid options for the 'hf' backend"),
])
def test_bad_input_exits_2_with_the_fix(data_dir: Path, args: list[str], message: str) -> None:
    done = mike("eval", "--data-dir", str(data_dir), *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_missing_data_dir_says_how_to_get_it(tmp_path: Path) -> None:
    done = mike("eval", "--data-dir", str(tmp_path / "none"))
    assert done.returncode == 2 and "mike data download" in done.stderr


def test_eval_then_report(data_dir: Path, tmp_path: Path) -> None:
    """The mock backend stands in for the embedded model: the command's files and resume are the point."""
    # Scripts only: lingua's models, loaded again in each subprocess, would triple the time.
    run_dir = tmp_path / "run"
    args = ["eval", "--backend", "mock", "--language-id", "script", "--data-dir", str(data_dir), "--tasks", "zsre", "--languages", "de",
            "--strategy", "one-shot", "--metrics", "reliability,locality", "--limit", "2",
            "--run-dir", str(run_dir), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    done = mike(*args)
    assert done.returncode == 0, done.stderr
    assert "zsre  en>de    reliability  2" in done.stdout
    summary = read_summary(run_dir)
    assert summary.totals.rows == 4 and summary.totals.cache_hits == 0
    report = mike("report", str(run_dir))
    assert report.returncode == 0 and "Averages over target languages" in report.stdout
    assert "paper_f1" in report.stdout and "token_f1" in report.stdout
    # The same command again resumes the finished run: nothing new is computed.
    again = mike(*args)
    assert again.returncode == 0 and len(results_text(run_dir).splitlines()) == 4
