"""Sharded runs merged give the unsharded run's rows and scores; other runs are refused.

The mock backend stands in for a model (sharding and merging are about the plan and
the files); real BMIKE-53 files, skipped items included (Hebrew lacks some).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.merge import merge_shards
from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import iter_result_rows, read_summary

CONFIG = EvalConfig(tasks=("zsre", "counterfact"), languages=("de", "he"), strategy="one-shot",
                    limit=7, language_id="script")
VOLATILE = {"cached", "cost_usd"}


def run(benchmark: Benchmark, folder: Path, config: EvalConfig) -> None:
    with ResponseCache(folder / "cache") as cache:  # each shard on its own machine and cache
        Evaluator(MockBackend(), benchmark=benchmark, cache=cache, progress=False).run(
            config, folder / "run")


def shards(benchmark: Benchmark, tmp_path: Path, n: int) -> list[Path]:
    folders = []
    for i in range(1, n + 1):
        run(benchmark, tmp_path / f"shard{i}", CONFIG.model_copy(update={"shard": (i, n)}))
        folders.append(tmp_path / f"shard{i}" / "run")
    return folders


def test_merged_shards_equal_the_unsharded_run(benchmark: Benchmark, tmp_path: Path) -> None:
    run(benchmark, tmp_path / "whole", CONFIG)
    parts = shards(benchmark, tmp_path, 3)
    sizes = [sum(1 for _ in iter_result_rows(p)) for p in parts]
    assert all(sizes) and sum(sizes) == sum(1 for _ in iter_result_rows(tmp_path / "whole/run"))
    merged = merge_shards(parts, tmp_path / "merged")
    whole = [r.model_dump(exclude=VOLATILE) for r in iter_result_rows(tmp_path / "whole/run")]
    joined = [r.model_dump(exclude=VOLATILE) for r in iter_result_rows(tmp_path / "merged")]
    assert sorted(joined, key=lambda r: r["id"]) == sorted(whole, key=lambda r: r["id"])
    reference = read_summary(tmp_path / "whole/run")
    assert merged.results == reference.results and merged.skipped == reference.skipped
    assert merged.config == reference.config and merged.totals.rows == reference.totals.rows
    requests = read_requests(tmp_path / "merged")
    assert all(r["cache_key"] in requests for r in joined)


def test_shards_of_different_runs_are_refused(benchmark: Benchmark, tmp_path: Path) -> None:
    parts = shards(benchmark, tmp_path, 2)
    with pytest.raises(ConfigError, match=r"must be 1\.\.2 of 2"):
        merge_shards(parts[:1], tmp_path / "merged")
    other = tmp_path / "other"
    run(benchmark, other, CONFIG.model_copy(update={"shard": (2, 2), "limit": 6}))
    with pytest.raises(ConfigError, match="another configuration"):
        merge_shards([parts[0], other / "run"], tmp_path / "merged")
    with pytest.raises(ConfigError, match="is not a shard"):
        run(benchmark, tmp_path / "whole", CONFIG)
        merge_shards([tmp_path / "whole" / "run", parts[1]], tmp_path / "merged")


def test_a_bad_shard_option_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="expected I/N such as 2/4"):
        EvalConfig(shard="2-4")
    with pytest.raises(ValueError, match="I must be between 1 and N"):
        EvalConfig(shard="5/4")
    assert EvalConfig().fingerprint() == EvalConfig(shard=None).fingerprint()


def test_mike_report_over_shards_reports_the_run(benchmark: Benchmark, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from mike_sdk.cli.main import main

    run(benchmark, tmp_path / "whole", CONFIG)
    parts = [str(p) for p in shards(benchmark, tmp_path, 3)]
    common = ["--format", "md,csv", "--labels", "run", "--resamples", "200"]
    assert main(["report", str(tmp_path / "whole/run"), "--out", str(tmp_path / "a"),
                 *common]) == 0
    assert main(["report", *parts, *common]) == 0
    assert "the 3 shards merged" in capsys.readouterr().out
    written = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert written and written == sorted(p.name for p in (Path(parts[0]) / "report").iterdir())
    for name in written:
        ours = (Path(parts[0]) / "report" / name).read_text().splitlines()
        theirs = (tmp_path / "a" / name).read_text().splitlines()
        # Equal but for where the run was read from, which names the shards.
        runs = [i for i, line in enumerate(ours) if line.startswith("Runs: ")]
        for i in runs:
            assert " + ".join(parts) in ours[i]
            ours[i] = theirs[i]
        assert ours == theirs, name
    # A shard beside another run is refused: merge it first.
    assert main(["report", parts[0], str(tmp_path / "whole/run"), *common]) == 2
    assert "is a shard" in capsys.readouterr().err
