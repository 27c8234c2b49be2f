"""Helper processes on real data and real processes: what they write is what one process
writes, and whatever they cannot do (an answer not cached, a crash, an error) the run's
process does, once. The mock backend stands in for the model: helpers never call it."""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
from pathlib import Path
from typing import Any

import helper_strategies  # noqa: F401 - registers the test strategies
import pytest
from rows import results_text, write_results

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.cli.include import include
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.parallel.pool import MIN_ROWS, helper_count
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import RunDir

# Six blocks (two tasks, three pairs) of 5 items and four metrics.
CONFIG = EvalConfig(tasks=("counterfact", "zsre"), languages=("de", "zh", "fr"), limit=5,
                    strategy="test-waits-for-helper", language_id="script")


def run(benchmark: Benchmark, cache: Path, folder: Path, processes: int,
        config: EvalConfig = CONFIG) -> tuple[Evaluator, MockBackend]:
    backend = MockBackend()
    with ResponseCache(cache) as responses:
        evaluator = Evaluator(backend, benchmark=benchmark, cache=responses, progress=False,
                              processes=processes)
        evaluator.run(config, folder)
    return evaluator, backend


def wait_for_a_helper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """From now on, a run's process waits for a helper at its first prompt (see
    helper_strategies): for runs with helpers only."""
    monkeypatch.setenv("MIKE_TEST_RUN_PID", str(os.getpid()))
    monkeypatch.setenv("MIKE_TEST_MARKER", str(tmp_path / "helper-started"))


def sorted_rows(folder: Path) -> list[str]:
    return sorted(results_text(folder).splitlines())


def summary(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return data


def answered_blocks(caplog: pytest.LogCaptureFixture) -> int:
    """Blocks the helpers answered, from the pool's closing line."""
    line = next(r.getMessage() for r in caplog.records if "helper processes answered" in
                r.getMessage())
    return int(line.split(" answered ")[1].split(" of ")[0])


def test_helpers_write_what_one_process_writes(benchmark: Benchmark, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    run(benchmark, tmp_path / "cache", tmp_path / "fill", 1)  # answers the mock's
    run(benchmark, tmp_path / "cache", tmp_path / "one", 1)
    wait_for_a_helper(monkeypatch, tmp_path)
    with caplog.at_level(logging.INFO, logger="mike_sdk.parallel"):
        evaluator, backend = run(benchmark, tmp_path / "cache", tmp_path / "two", 2)
    assert answered_blocks(caplog) >= 1
    assert backend.calls == 0 and evaluator.calls == 0
    one, two = tmp_path / "one", tmp_path / "two"
    assert len(sorted_rows(two)) == 6 * 5 * 4
    assert sorted_rows(two) == sorted_rows(one)
    # The requests each row names are stored, once, as one process stores them.
    assert read_requests(two) == read_requests(one)
    for key in ("results", "skipped", "language_detection"):
        assert summary(two)[key] == summary(one)[key], key
    assert {k: v for k, v in summary(two)["totals"].items() if k != "wall_time_s"} == \
        {k: v for k, v in summary(one)["totals"].items() if k != "wall_time_s"}
    # Every member of both files is whole: ordinary readers read them to the end.
    for name in ("results.jsonl.gz", "prompts.jsonl.gz"):
        assert gzip.decompress((two / name).read_bytes())


def test_a_block_not_cached_is_given_back_and_sent_once(
        benchmark: Benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    wait_for_a_helper(monkeypatch, tmp_path)
    with caplog.at_level(logging.INFO, logger="mike_sdk.parallel"):
        evaluator, backend = run(benchmark, tmp_path / "cache", tmp_path / "two", 2)
    assert any("gave block" in r.getMessage() for r in caplog.records)
    assert answered_blocks(caplog) == 0
    rows = sorted_rows(tmp_path / "two")
    assert len(rows) == 6 * 5 * 4
    # Each request was sent once, by the run: as many as one process sends.
    sent = {r.model_dump_json() for r in backend.requests}
    assert len(backend.requests) == len(sent)
    monkeypatch.delenv("MIKE_TEST_MARKER")
    one_process, alone = run(benchmark, tmp_path / "cache-alone", tmp_path / "one", 1)
    assert sent == {r.model_dump_json() for r in alone.requests}
    assert evaluator.calls == one_process.calls  # likelihood scores included
    assert summary(tmp_path / "two")["totals"]["cache_hits"] == 0


@pytest.mark.parametrize(("strategy", "logged"), [
    ("test-dies-in-helper", None),
    ("test-fails-in-helper", "RuntimeError: rendering broke in the helper"),
])
def test_what_a_broken_helper_claimed_is_answered_by_the_run(
        benchmark: Benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, strategy: str, logged: str | None) -> None:
    config = CONFIG.model_copy(update={"strategy": strategy})
    run(benchmark, tmp_path / "cache", tmp_path / "fill", 1, config)
    wait_for_a_helper(monkeypatch, tmp_path)
    with caplog.at_level(logging.INFO, logger="mike_sdk.parallel"):
        _, backend = run(benchmark, tmp_path / "cache", tmp_path / "two", 2, config)
    assert backend.calls == 0
    assert answered_blocks(caplog) == 0
    if logged is not None:
        assert any(logged in r.getMessage() for r in caplog.records
                   if r.levelno == logging.WARNING)
    rows = sorted_rows(tmp_path / "two")
    assert len(rows) == len(set(rows)) == 6 * 5 * 4
    assert summary(tmp_path / "two")["results"] == summary(tmp_path / "fill")["results"]


def test_a_strategy_included_from_a_file_reaches_the_helpers(
        benchmark: Benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """``mike --include my_strategy.py``: the helpers load the same file."""
    plugin = tmp_path / "plugin_dir" / "my_strategy.py"
    plugin.parent.mkdir()
    plugin.write_text("from helper_strategies import WaitsForHelper\n"
                      "from mike_sdk.strategy import STRATEGIES\n\n"
                      "@STRATEGIES.register('test-from-a-file')\n"
                      "class FromAFile(WaitsForHelper):\n"
                      "    pass\n", encoding="utf-8")
    include(str(plugin))
    config = CONFIG.model_copy(update={"strategy": "test-from-a-file"})
    run(benchmark, tmp_path / "cache", tmp_path / "one", 1, config)
    wait_for_a_helper(monkeypatch, tmp_path)
    with caplog.at_level(logging.INFO, logger="mike_sdk.parallel"):
        run(benchmark, tmp_path / "cache", tmp_path / "two", 2, config)
    assert answered_blocks(caplog) >= 1
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
    assert summary(tmp_path / "two")["results"] == summary(tmp_path / "one")["results"]


def helpers_alive() -> list[int]:
    """Processes of this one running a helper (zombies included: not waited for)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and b"mike_sdk.parallel.helper" in command:
            found.append(int(entry.name))
    return found


def test_helpers_stop_when_the_run_stops(benchmark: Benchmark, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    wait_for_a_helper(monkeypatch, tmp_path)
    config = CONFIG.model_copy(update={"strategy": "test-fails-in-run"})
    with pytest.raises(RuntimeError, match="rendering broke in the run"):
        run(benchmark, tmp_path / "cache", tmp_path / "run", 2, config)
    assert (tmp_path / "helper-started").exists()  # a helper was at work
    assert helpers_alive() == []


def test_a_helper_block_that_cannot_be_written_stops_the_run(
        benchmark: Benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk, stood in for by a patched append (a real one cannot be had here):
    the run stops with the error instead of losing the helper's rows quietly."""
    run(benchmark, tmp_path / "cache", tmp_path / "fill", 1)

    def disk_full(self: RunDir, members: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RunDir, "append_packed", disk_full)
    wait_for_a_helper(monkeypatch, tmp_path)
    with pytest.raises(OSError, match="No space left"):
        run(benchmark, tmp_path / "cache", tmp_path / "two", 2)
    assert helpers_alive() == []


def test_a_folder_with_rows_is_resumed_in_one_process(
        benchmark: Benchmark, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = CONFIG.model_copy(update={"strategy": "zero-shot"})
    run(benchmark, tmp_path / "cache", tmp_path / "run", 1, config)
    every = sorted_rows(tmp_path / "run")
    write_results(tmp_path / "run", "".join(f"{line}\n" for line in every[:50]))
    with caplog.at_level(logging.INFO, logger="mike_sdk.parallel"):
        run(benchmark, tmp_path / "cache", tmp_path / "run", 2, config)
    assert any("already has rows" in r.getMessage() for r in caplog.records)
    ids = sorted(json.loads(line)["id"] for line in sorted_rows(tmp_path / "run"))
    assert ids == sorted(json.loads(line)["id"] for line in every)


def test_how_many_helpers() -> None:
    assert helper_count(1, 10**6) == 0
    assert helper_count(3, 10) == 2  # asked for: started whatever the size
    assert helper_count(None, MIN_ROWS - 1) == 0  # too small to pay for a start
    cores = len(os.sched_getaffinity(0))
    assert helper_count(None, MIN_ROWS) == min(cores, 4) - 1


def test_processes_below_one_are_refused() -> None:
    with pytest.raises(ConfigError, match="processes=0: give 1 or more"):
        Evaluator(MockBackend(), processes=0)
