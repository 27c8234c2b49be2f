"""``--sample`` and ``--target-ci`` in batch mode: the rows of a live run of the same seed.

The loopback batch server (tests/batch_servers.py) stands in for OpenAI's Batch API.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_helpers import CONFIG, batch, live, rows, same_rows
from batch_servers import BatchServer

from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.runfolder.rundir import read_summary

SAMPLED = CONFIG.model_copy(update={"limit": None, "sample": 6, "seed": 5,
                                    "strategy": "zero-shot"})
# Live rounds of the strict server's answers: wide intervals, so that the rounds grow.
TARGET = SAMPLED.model_copy(update={"sample": 80, "target_ci": 1.0,
                                    "metrics": ("reliability",)})


@pytest.mark.parametrize("config", [SAMPLED, TARGET], ids=["sample", "target-ci"])
def test_sampled_batch_run_equals_the_live_run(config: EvalConfig, batch_server: BatchServer,
                                               benchmark: Benchmark, tmp_path: Path) -> None:
    live(batch_server, "openai", benchmark, tmp_path / "live", config=config)
    done = batch(batch_server, "openai", benchmark, tmp_path / "batch", config=config)
    same_rows(rows(tmp_path / "batch"), rows(tmp_path / "live"))
    assert done.summary.sampling == read_summary(tmp_path / "live" / "run").sampling
    assert done.summary.sampling is not None
    if done.summary.sampling.target_ci is not None:
        assert done.summary.sampling.rounds >= 2
        assert batch_server.creates("openai") == done.summary.sampling.rounds
