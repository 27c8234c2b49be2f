"""The progress display tells the truth: rows written, from 0 to exactly 100%.

The mock backend stands in for a model (the bar counts rows and requests, whatever
answers them); stderr is captured, so the display prints plain lines.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

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
    assert line.startswith("progress: 12/12 items (100%), answered 11")


def test_a_resumed_run_does_not_count_its_rows_twice(benchmark: Benchmark, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run(benchmark, tmp_path)
    results = tmp_path / "run" / "results.jsonl"
    results.write_text("".join(results.read_text().splitlines(keepends=True)[:5]))
    capsys.readouterr()
    run(benchmark, tmp_path)
    assert final_line(capsys.readouterr().err).startswith("progress: 12/12 items (100%)")


def test_skipped_items_leave_the_total() -> None:
    stream = io.StringIO()  # not a terminal: plain lines, no escape codes
    bar = Progress(10, stream=stream)
    bar.requests(3, cached=True)
    bar.likelihoods(2)
    bar.rows(6)
    bar.skipped(4)
    bar.finish()
    assert stream.getvalue() == ("progress: 6/6 items (100%), answered 3, cache_hits 3, "
                                 "likelihood 2\n")
