"""``mike report`` over sampled runs: numbers on the items all runs share, and said so.

Two mock models (a perfect in-context editor and a hash answerer) on seeded samples of
different seeds and sizes, real BMIKE-53 items.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.report.build import ReportOptions, build_report
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.rundir import iter_result_rows
from mike_sdk.sampling.positions import positions

CONFIG = EvalConfig(tasks=("zsre",), languages=("de", "ru"), strategy="zero-shot",
                    metrics=("reliability",), language_id="script")


def run(benchmark: Benchmark, folder: Path, answer: str, **sample: int) -> Path:
    with ResponseCache(folder / "cache") as cache:
        Evaluator(MockBackend(answer=answer, model=f"mock-{answer}"), benchmark=benchmark,
                  cache=cache, progress=False).run(
            CONFIG.model_copy(update=sample), folder / "run")
    return folder / "run"


def table(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_sampled_runs_are_compared_on_their_shared_items(benchmark: Benchmark,
                                                         tmp_path: Path) -> None:
    a = run(benchmark, tmp_path / "a", "edit", sample=120, seed=1)
    b = run(benchmark, tmp_path / "b", "hash", sample=150, seed=2)
    shared = positions("zsre", 743, 120, 1) & positions("zsre", 743, 150, 2)
    assert 0 < len(shared) < 120  # some items in common, not all
    build_report([a, b], tmp_path / "report", ReportOptions(formats=("md", "csv"),
                                                           resamples=200))
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "Sampled runs (run: --sample, seed 1" in md
    assert f"only the items all 2 runs share (items per task: zsre {len(shared)})" in md
    de = {r.index for r in iter_result_rows(a) if r.target_lang == "de"} & shared
    for row in table(tmp_path / "report" / "scores.csv"):
        if row["target_lang"] == "de":
            assert int(row["n"]) == len(de)
    diffs = [r for r in table(tmp_path / "report" / "differences.csv")
             if r["grouping"] == "language" and r["group"] == "de"]
    assert diffs and all(int(r["n"]) == len(de) and r["paired"] == "True" for r in diffs)


def test_one_sampled_run_says_it_was_sampled(benchmark: Benchmark, tmp_path: Path) -> None:
    a = run(benchmark, tmp_path / "a", "edit", sample=30, seed=1)
    build_report([a], tmp_path / "report", ReportOptions(formats=("md",), resamples=200))
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "Sampled run (run: --sample, seed 1, items zsre 30 of 743)" in md
