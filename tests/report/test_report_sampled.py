"""``mike report`` over sampled runs: numbers on the items all runs share, and said so.

Two mock models (a perfect in-context editor and a hash answerer) on seeded samples of
different seeds and sizes, real BMIKE-53 items.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rows import write_results

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.report.build import ReportOptions, build_report
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.rundir import iter_result_rows, row_line
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


def _with_twin(run_dir: Path) -> Path:
    """Append a copy of every ``de`` row as ``fr``: a language scoring each position alike."""
    twins = [r.model_copy(update={"target_lang": "fr", "id": r.id.replace(">de/", ">fr/")})
             for r in iter_result_rows(run_dir) if r.target_lang == "de"]
    write_results(run_dir, b"".join(row_line(r) for r in twins).decode(), append=True)
    return run_dir


def _width(row: dict[str, str]) -> float:
    return float(row["ci_high"]) - float(row["ci_low"])


def test_average_over_languages_resamples_positions_jointly(benchmark: Benchmark,
                                                            tmp_path: Path) -> None:
    """A sample takes the same positions in every language: the average over two languages
    scoring each position alike has one language's interval, for scores and differences
    (resampling each language on its own would narrow it by about 1/sqrt(2))."""
    one = {"languages": ("de",), "sample": 200, "seed": 3}
    a = _with_twin(run(benchmark, tmp_path / "a", "hash", **one))
    b = _with_twin(run(benchmark, tmp_path / "b", "edit", **one))
    build_report([a, b], tmp_path / "report", ReportOptions(formats=("csv",), resamples=2000))
    folder = tmp_path / "report"
    de = {(r["run"], r["scorer"]): r for r in table(folder / "scores.csv")
          if r["target_lang"] == "de"}
    averages = [r for r in table(folder / "averages.csv") if r["grouping"] == "all"]
    assert averages and all(r["languages"] == "2" for r in averages)
    for avg in averages:
        own = de[(avg["run"], avg["scorer"])]
        assert float(avg["mean"]) == float(own["mean"])
        if _width(own) > 0:
            assert abs(_width(avg) / _width(own) - 1) < 0.1, (avg, own)
    diffs = table(folder / "differences.csv")
    language = {r["scorer"]: r for r in diffs if r["group"] == "de"}
    averaged = [r for r in diffs if r["grouping"] == "all"]
    assert averaged and all(r["paired"] == "True" for r in averaged)
    for avg in averaged:
        own = language[avg["scorer"]]
        assert _width(own) > 0 and abs(_width(avg) / _width(own) - 1) < 0.1, (avg, own)
