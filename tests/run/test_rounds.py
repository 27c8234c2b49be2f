"""``--target-ci W``: rounds along the permutation until the interval is narrow enough.

The mock backend's ``edit`` answers (a perfect in-context editor) score portability
questions partly right, item by item differently: an estimate with a real spread. Real
BMIKE-53 files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from killing import kill_when
from rows import results_text

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.rundir import iter_result_rows, read_summary, results_file
from mike_sdk.sampling.positions import positions
from mike_sdk.sampling.rounds import FIRST_ROUND, half_widths, language_averages, next_size

CONFIG = EvalConfig(tasks=("zsre",), languages=("de", "fr"), strategy="zero-shot",
                    metrics=("portability", "locality"), target_ci=2.0, sample=300,
                    language_id="script")
VOLATILE = {"cached", "cost_usd"}

KILLED_RUN = """
import sys
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.run.config import EvalConfig
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.evaluator import Evaluator
config = EvalConfig.model_validate_json(sys.argv[4])
with ResponseCache(sys.argv[2]) as cache:
    Evaluator(MockBackend(answer="edit", batch_size=1, max_concurrency=1, latency_s=0.01),
              benchmark=Benchmark(sys.argv[1]), cache=cache, progress=False,
              chunk_size=8).run(config, sys.argv[3])
"""


def run(benchmark: Benchmark, cache_dir: Path, run_dir: Path,
        config: EvalConfig = CONFIG) -> Evaluator:
    with ResponseCache(cache_dir) as cache:
        evaluator = Evaluator(MockBackend(answer="edit"), benchmark=benchmark, cache=cache,
                              progress=False)
        evaluator.run(config, run_dir)
    return evaluator


def rows_by_id(run_dir: Path) -> dict[str, dict[str, object]]:
    return {r.id: r.model_dump(exclude=VOLATILE) for r in iter_result_rows(run_dir)}


def test_rounds_stop_at_the_target_width_on_a_prefix_of_the_permutation(
        benchmark: Benchmark, tmp_path: Path) -> None:
    evaluator = run(benchmark, tmp_path / "cache", tmp_path / "run")
    sampling = read_summary(tmp_path / "run").sampling
    assert sampling is not None and sampling.target_ci == 2.0
    n = sampling.items["zsre"]
    assert sampling.rounds >= 2 and FIRST_ROUND < n < 300
    rows = list(iter_result_rows(tmp_path / "run"))
    assert {r.index for r in rows} == positions("zsre", 743, n, 0)
    # The recorded widths are those of the rows, and within the target.
    assert half_widths(rows) == sampling.half_width
    assert max(sampling.half_width["zsre"].values()) <= 2.0
    # Each request once, over all rounds, and the summary counts every round's calls.
    assert evaluator.calls == len(rows)
    assert read_summary(tmp_path / "run").totals.backend_calls_this_session == len(rows)
    # A fixed sample of the same size is the same run.
    fixed = CONFIG.model_copy(update={"target_ci": None, "sample": n})
    run(benchmark, tmp_path / "cache2", tmp_path / "fixed", fixed)
    assert rows_by_id(tmp_path / "fixed") == rows_by_id(tmp_path / "run")


def test_a_task_whose_items_run_out_stops_there(benchmark: Benchmark, tmp_path: Path) -> None:
    config = CONFIG.model_copy(update={"target_ci": 0.01, "sample": 60})
    run(benchmark, tmp_path / "cache", tmp_path / "run", config)
    sampling = read_summary(tmp_path / "run").sampling
    assert sampling is not None
    assert sampling.items == {"zsre": 60} and sampling.rounds == 2
    assert max(sampling.half_width["zsre"].values()) > 0.01


def test_next_size_projects_from_the_width() -> None:
    assert next_size(50, 4.0, 2.0, 743) == 200  # four times the items halve the width
    assert next_size(50, 2.2, 2.0, 743) == 75  # at least MIN_STEP more
    assert next_size(50, 20.0, 2.0, 743) == 200  # at most MAX_GROWTH times
    assert next_size(700, 4.0, 2.0, 743) == 743


@pytest.mark.parametrize("config", [CONFIG, CONFIG.model_copy(
    update={"target_ci": None, "sample": 2 * FIRST_ROUND})], ids=["target-ci", "sample"])
def test_a_killed_sampled_run_resumes_to_the_uninterrupted_rows(
        config: EvalConfig, benchmark: Benchmark, data_dir: Path, tmp_path: Path) -> None:
    run(benchmark, tmp_path / "ref-cache", tmp_path / "ref", config)
    run_dir, cache_dir = tmp_path / "run", tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(data_dir), str(cache_dir),
                             str(run_dir), config.model_dump_json()], env=os.environ.copy())
    # Killed past the first round's rows (2 languages x 2 metrics a position): with
    # --target-ci, in its second round.
    kill_when(proc, lambda: results_file(run_dir).exists()
              and results_text(run_dir).count("\n") > 4 * FIRST_ROUND + 8, 120)
    resumed = run(benchmark, cache_dir, run_dir, config)
    assert rows_by_id(run_dir) == rows_by_id(tmp_path / "ref")
    assert read_summary(run_dir).sampling == read_summary(tmp_path / "ref").sampling
    reference_rows = len(rows_by_id(tmp_path / "ref"))
    assert resumed.calls < reference_rows - 4 * FIRST_ROUND


def test_positions_are_resampled_jointly_across_languages(benchmark: Benchmark,
                                                           tmp_path: Path) -> None:
    """Two languages scoring every item alike: averaging them adds no information, and
    the paired interval says so; resampling each language on its own would halve the
    variance."""
    config = CONFIG.model_copy(update={"languages": ("de",), "target_ci": None,
                                       "sample": 200, "metrics": ("portability",)})
    run(benchmark, tmp_path / "cache", tmp_path / "run", config)
    de = list(iter_result_rows(tmp_path / "run"))
    twin = [r.model_copy(update={"target_lang": "fr", "id": r.id.replace(">de", ">fr")})
            for r in de]
    alone = language_averages(de)[("zsre", "portability", "en")]
    paired = language_averages(de + twin)[("zsre", "portability", "en")]
    apart = language_averages(de + twin, paired=False)[("zsre", "portability", "en")]
    assert paired.mean == apart.mean == alone.mean
    width = alone.high - alone.low
    assert abs((paired.high - paired.low) - width) < 0.1 * width
    assert (apart.high - apart.low) < 0.8 * width  # about 1/sqrt(2) of it
