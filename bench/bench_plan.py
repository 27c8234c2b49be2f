"""Plan and render every prompt of one configuration over the whole benchmark.

Target: under 30 s and under 1.5 GB peak RSS on 2 cores.

    python bench/bench_plan.py [DATA_DIR] [--strategy 8-shot-metric-specific]
"""

from __future__ import annotations

import argparse
import resource
import time

from mike_sdk.backend import Abilities
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import get_strategy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default="../shared/bmike53")
    parser.add_argument("--strategy", default="8-shot-metric-specific")
    args = parser.parse_args()
    config = EvalConfig(strategy=args.strategy)
    start = time.perf_counter()
    planner = Planner(Benchmark(args.data_dir), config, get_strategy(config.strategy),
                      Abilities(completion=True))
    requests = chars = 0
    for work in planner:
        requests += 1
        chars += len(work.request.prompt or "")
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    skipped = sum(sum(langs.values()) for langs in planner.skipped.values())
    print(f"strategy={args.strategy} requests={requests} skipped_items={skipped} "
          f"prompt_chars={chars}")
    print(f"time_s={elapsed:.2f} requests_per_s={requests / elapsed:.0f} "
          f"peak_rss_mb={peak_mb:.0f}")
    print(f"targets: time < 30 s: {'PASS' if elapsed < 30 else 'FAIL'}; "
          f"RSS < 1536 MB: {'PASS' if peak_mb < 1536 else 'FAIL'}")


if __name__ == "__main__":
    main()
