"""`mike view` from the command line: a real server process, and refusals in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mike_sdk.cli.main import main


def test_mike_view_serves_the_named_runs_until_interrupted(view_runs: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mike_sdk.cli.main", "view", *map(str, view_runs), "--port", "0",
         "--no-open", "--labels", "a,b", "--cache-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("mike view: http://127.0.0.1:"), process.stderr.read() if (
            process.poll() is not None and process.stderr) else line
        url = line.split()[2]
        runs = httpx.get(url + "/api/runs").json()
        assert [(r["label"], r["rows"]) for r in runs] == [("a", 48), ("b", 48)]
        assert "<title>mike view</title>" in httpx.get(url + "/").text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert not any(p.name.endswith(".duckdb") for p in view_runs[0].iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (["--host", "0.0.0.0"], "--host 0.0.0.0 is not a loopback address"),
    (["--labels", "one"], "--labels gave 1 names for 2 run folders"),
])
def test_refusals_are_one_line(view_runs: tuple[Path, Path], args: list[str], message: str,
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
