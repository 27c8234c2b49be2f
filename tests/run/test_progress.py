"""The progress display tells the truth: rows written, from 0 to exactly 100%.

The mock backend stands in for a model (the bar counts rows and requests, whatever
answers them); stderr is captured, so the display prints plain lines.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rows import results_text, write_results

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.run.progress import Progress

# zsRE de, zero-shot: 12 items but 11 distinct prompts (two questions are the same).
REPEATS = EvalConfig(tasks=("zsre",), languages=("de",), strategy="zero-shot", limit=3,
                     language_id="script")


def final_line(err: str) -> str:
    return [line for line in err.splitlines() if line.startswith("progress:")][-1]


def run(benchmark: Benchmark, tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "cache") as cache:
        Evaluator(MockBackend(), benchmark=benchmark, cache=cache, progress=True).run(
            REPEATS, tmp_path / "run")


def test_repeated_prompts_still_end_at_100_percent(benchmark: Benchmark, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run(benchmark, tmp_path)
    line = final_line(capsys.readouterr().err)
    assert line.startswith("progress: 12/12 items written (100%), requests answered 11")


def test_a_resumed_run_does_not_count_its_rows_twice(benchmark: Benchmark, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run(benchmark, tmp_path)
    kept = results_text(tmp_path / "run").splitlines(keepends=True)[:5]
    write_results(tmp_path / "run", "".join(kept))
    capsys.readouterr()
    run(benchmark, tmp_path)
    assert final_line(capsys.readouterr().err).startswith("progress: 12/12 items written (100%)")


def test_skipped_items_leave_the_total() -> None:
    stream = io.StringIO()  # not a terminal: plain lines, no escape codes
    bar = Progress(10, stream=stream)
    bar.requests(3, cached=True)
    bar.likelihoods(2)
    bar.rows(6)
    bar.skipped(4)
    bar.finish()
    assert stream.getvalue() == ("progress: 6/6 items written (100%), requests answered 3 "
                                 "(cache hits 3), likelihood 2\n")


def test_plain_lines_say_what_runs_ahead_and_are_not_repeated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mike_sdk.run.progress.PLAIN_EVERY_S", 0.0)  # a line per event
    stream = io.StringIO()
    bar = Progress(40, stream=stream)
    bar.requests(39, cached=False)  # answered, but no chunk written yet
    bar.rows(40)
    bar.finish()  # the same line as the last one: not printed again
    assert stream.getvalue().splitlines() == [
        "progress: 0/40 items written (0%), requests answered 39 (cache hits 0)",
        "progress: 40/40 items written (100%), requests answered 39 (cache hits 0)"]
