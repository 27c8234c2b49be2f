"""``--sample N``: a seeded sample of item positions, the same in every language and run.

Real BMIKE-53 files (Hebrew lacks some zsRE items); the mock backend stands in for a model
(these tests are about the plan, the folder and the cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.cli.main import main
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.merge import merge_shards
from mike_sdk.runfolder.rundir import iter_result_rows, read_manifest, read_summary, results_file
from mike_sdk.sampling.positions import permutation, positions

CONFIG = EvalConfig(tasks=("zsre", "counterfact"), languages=("de", "he"), strategy="zero-shot",
                    metrics=("reliability", "locality"), sample=12, seed=7,
                    language_id="script")
VOLATILE = {"cached", "cost_usd"}


def run(benchmark: Benchmark, cache_dir: Path, run_dir: Path, config: EvalConfig = CONFIG,
        ) -> Evaluator:
    with ResponseCache(cache_dir) as cache:
        evaluator = Evaluator(MockBackend(batch_size=1), benchmark=benchmark, cache=cache,
                              progress=False)
        evaluator.run(config, run_dir)
    return evaluator


def rows_by_id(run_dir: Path) -> dict[str, dict[str, object]]:
    return {r.id: r.model_dump(exclude=VOLATILE) for r in iter_result_rows(run_dir)}


def test_the_permutation_is_seeded_stable_and_extends() -> None:
    order = permutation("zsre", 743, seed=7)
    assert sorted(order) == list(range(743))
    assert order[:12] != sorted(order[:12]) or order[:12] != list(range(12))
    assert permutation("zsre", 743, seed=7) == order
    assert permutation("zsre", 743, seed=8) != order
    assert permutation("counterfact", 743, seed=7) != order
    # A position's rank does not depend on how many positions there are.
    assert [p for p in permutation("zsre", 800, seed=7) if p < 743] == order
    assert positions("zsre", 743, 12, 7) < positions("zsre", 743, 30, 7)


def test_sampled_items_are_the_same_in_every_language(benchmark: Benchmark,
                                                      tmp_path: Path) -> None:
    run(benchmark, tmp_path / "cache", tmp_path / "run")
    rows = list(iter_result_rows(tmp_path / "run"))
    for task in CONFIG.tasks:
        chosen = positions(task, {"zsre": 743, "counterfact": 1031}[task], 12, 7)
        de = {r.index for r in rows if r.task == task and r.target_lang == "de"}
        he = {r.index for r in rows if r.task == task and r.target_lang == "he"}
        assert de == chosen  # German has every item
        assert he <= chosen
    summary = read_summary(tmp_path / "run")
    assert summary.sampling is not None
    assert summary.sampling.seed == 7
    assert summary.sampling.items == {"zsre": 12, "counterfact": 12}
    assert summary.sampling.available == {"zsre": 743, "counterfact": 1031}
    # Hebrew's missing zsRE items among the sample are counted, not dropped silently.
    he_zsre = {r.index for r in rows if r.task == "zsre" and r.target_lang == "he"}
    assert summary.skipped["zsre"]["en>he"] == 12 - len(he_zsre)
    assert read_manifest(tmp_path / "run").config.seed == 7


def test_a_larger_sample_extends_the_smaller_one_from_the_cache(benchmark: Benchmark,
                                                                tmp_path: Path) -> None:
    small = run(benchmark, tmp_path / "cache", tmp_path / "small")
    larger = CONFIG.model_copy(update={"sample": 20})
    bigger = run(benchmark, tmp_path / "cache", tmp_path / "big", larger)
    fresh = run(benchmark, tmp_path / "fresh-cache", tmp_path / "fresh", larger)
    big_rows = rows_by_id(tmp_path / "big")
    assert big_rows == rows_by_id(tmp_path / "fresh")
    small_rows = rows_by_id(tmp_path / "small")
    assert all(big_rows[i] == row for i, row in small_rows.items())
    # Only the 8 new positions were sent: every earlier answer came from the cache.
    assert bigger.calls == fresh.calls - small.calls
    cached = [r for r in iter_result_rows(tmp_path / "big") if r.cached]
    assert {r.id for r in cached} == set(small_rows)


def test_sampled_shards_merge_into_the_unsharded_run(benchmark: Benchmark,
                                                     tmp_path: Path) -> None:
    run(benchmark, tmp_path / "cache", tmp_path / "whole")
    parts = []
    for i in (1, 2, 3):
        folder = tmp_path / f"shard{i}"
        run(benchmark, folder / "cache", folder / "run",
            CONFIG.model_copy(update={"shard": (i, 3)}))
        parts.append(folder / "run")
    merged = merge_shards(parts, tmp_path / "merged")
    assert rows_by_id(tmp_path / "merged") == rows_by_id(tmp_path / "whole")
    whole = read_summary(tmp_path / "whole")
    assert merged.results == whole.results
    assert merged.skipped == whole.skipped


def test_cli_sample_and_seed_reach_the_manifest(data_dir: Path, tmp_path: Path) -> None:
    argv = ["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
            "--languages", "de", "--strategy", "zero-shot", "--metrics", "reliability",
            "--no-progress", "--language-id", "script", "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--sample", "5", "--seed", "3", "--run-dir", str(tmp_path / "a")]) == 0
    assert main([*argv, "--sample", "5", "--seed", "4", "--run-dir", str(tmp_path / "b")]) == 0
    config = json.loads((tmp_path / "a" / "manifest.json").read_text())["config"]
    assert (config["sample"], config["seed"]) == (5, 3)
    a = {r.index for r in iter_result_rows(tmp_path / "a")}
    b = {r.index for r in iter_result_rows(tmp_path / "b")}
    assert len(a) == len(b) == 5 and a != b


@pytest.mark.parametrize(("flags", "message"), [
    (["--limit", "3", "--sample", "5"], "give limit (the first items) or sample"),
    (["--sample", "5", "--pilot", "4"], "--pilot K goes with --dry-run")])
def test_flags_that_do_not_combine_are_refused_in_one_line(
        flags: list[str], message: str, data_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
                 "--languages", "de", *flags,
                 "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not results_file(tmp_path / "run").exists()
