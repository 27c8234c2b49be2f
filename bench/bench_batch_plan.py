"""Memory of planning a full configuration in batch mode: every work item of the
8-shot strategy over the whole benchmark, keyed and looked up in an empty response cache,
as :class:`~mike_sdk.batch.runner.BatchRunner` does before packing its first batch.

The backend is OpenAI's (chat messages, as ``--batch`` sends them) pointed at a loopback
port nothing listens on: planning sends nothing. Target: peak RSS under 500 MB.

    python bench/bench_batch_plan.py [DATA_DIR] [--strategy 8-shot-metric-specific]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from mike_sdk.backend import BACKENDS
from mike_sdk.batch.mode import plan_requests
from mike_sdk.batch.provider import provider_for
from mike_sdk.batch.runner import BatchRunner
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig

TARGET_MB = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default="../shared/bmike53")
    parser.add_argument("--strategy", default="8-shot-metric-specific")
    args = parser.parse_args()
    config = EvalConfig(strategy=args.strategy, language_id="script")
    benchmark = Benchmark(args.data_dir)
    backend = BACKENDS.create("openai", model="gpt-5-mini", base_url="http://127.0.0.1:9/v1",
                              api_key="unused")
    folder = Path(tempfile.mkdtemp(prefix="bench-batch-plan-"))
    with ResponseCache(folder / "cache") as cache:
        client = ModelClient(backend, cache=cache)
        runner = BatchRunner(client, provider_for(backend), folder / "run")
        start = time.perf_counter()
        pending = runner.plan(lambda: plan_requests(client, benchmark, config, folder / "run"))
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"strategy={args.strategy} uncached_requests={pending} time_s={elapsed:.1f} "
          f"peak_rss_mb={peak_mb:.0f}")
    print(f"target: RSS < {TARGET_MB} MB: {'PASS' if peak_mb < TARGET_MB else 'FAIL'}")


if __name__ == "__main__":
    main()
