"""`mike view` from the command line: a real server process, and refusals in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

import httpx
import pytest
from runs import Runs, damaged_copy

from mike_sdk.cli.main import main


@contextmanager
def _served(folders: list[Path], cache: Path, *args: str) -> Iterator[tuple[str, Popen[str]]]:
    """`mike view` in its own process: its URL (the first line it prints) and the process,
    interrupted (Ctrl-C) at the end of the block."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mike_sdk.cli.main", "view", *map(str, folders), "--port", "0",
         "--no-open", "--cache-dir", str(cache), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("mike view: http://127.0.0.1:"), process.stderr.read() if (
            process.poll() is not None and process.stderr) else line
        yield line.split()[2], process
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def _rows(url: str, run: str) -> httpx.Response:
    """The run's first page, once its tables are built (the URL comes before them)."""
    for _ in range(300):
        answer = httpx.get(url + "/api/rows", params={"run": run})
        if answer.status_code != 503:
            return answer
        time.sleep(0.1)
    raise AssertionError("the rows were not ready in 30 s")


def test_mike_view_serves_the_named_runs_until_interrupted(view_runs: Runs,
                                                           tmp_path: Path) -> None:
    with _served(list(view_runs), tmp_path, "--labels", "a,b,c") as (url, process):
        runs = httpx.get(url + "/api/runs").json()
        assert [(r["label"], r["rows"]) for r in runs] == [("a", 48), ("b", 48), ("c", 48)]
        assert "<title>mike view</title>" in httpx.get(url + "/").text
        assert _rows(url, "2").json()["total"] == 48
    assert process.returncode == 0
    assert process.stderr is not None and "mike view: rows ready in" in process.stderr.read()
    assert not any(p.name.endswith(".duckdb") for p in view_runs[0].iterdir())


def test_a_damaged_run_is_named_on_the_page_and_on_stderr(view_runs: Runs,
                                                          tmp_path: Path) -> None:
    folder = damaged_copy(view_runs[0], tmp_path / "run")
    with _served([folder], tmp_path / "c") as (url, process):
        assert httpx.get(url + "/api/summary", params={"run": "0"}).status_code == 200
        failed = _rows(url, "0")
        assert failed.status_code == 400 and "field 'cache_key' is missing" in failed.json()[
            "error"]
    assert process.returncode == 2  # the session could not show the rows
    assert process.stderr is not None
    errors = [line for line in process.stderr.read().splitlines() if "error" in line]
    assert errors == [f"mike: error: {failed.json()['error']}"]


@pytest.mark.parametrize(("args", "message"), [
    (["--host", "0.0.0.0"], "--host 0.0.0.0 is not a loopback address"),
    (["--labels", "one"], "--labels gave 1 names for 3 run folders"),
])
def test_refusals_are_one_line(view_runs: Runs, args: list[str], message: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", *map(str, view_runs), "--no-open", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    os.makedirs(tmp_path / "empty")
    assert main(["view", str(tmp_path / "empty"), "--no-open", "--cache-dir",
                 str(tmp_path / "c")]) == 2
    assert "No results.jsonl.gz (or results.jsonl) in" in capsys.readouterr().err
