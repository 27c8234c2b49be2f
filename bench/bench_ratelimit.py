"""Sustained throughput under a server-enforced requests-per-minute limit.

A loopback server enforces R requests per minute (429 + retry-after-ms beyond it);
the evaluator, configured with ``rpm=R``, runs a zero-shot configuration sized to
about R x minutes requests through a real HTTP backend (8 in flight). Prints the
achieved requests per minute (target: at least 95% of R), the 429s received and
the items lost (must be 0).

    python bench/bench_ratelimit.py [DATA_DIR] [--rpm 600] [--seconds 120]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback import LoopbackBackend, LoopbackServer

from mike_sdk.backend import Abilities
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.retry import RetryPolicy
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.data.languages import TARGET_LANGUAGES
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.run.plan import Planner
from mike_sdk.runfolder.rundir import row_lines
from mike_sdk.strategy import get_strategy


def sized_config(benchmark: Benchmark, calls: int) -> tuple[EvalConfig, int, int]:
    """A zero-shot zsRE configuration with at least ``calls`` distinct requests:
    (config, distinct requests, work items)."""
    strategy = get_strategy("zero-shot")
    # About 5% of zero-shot prompts repeat within a file (shared once): ask 10% more.
    limit = max(1, min(700, math.ceil(calls * 1.1 / 4)))
    langs: list[str] = []
    prompts: set[str] = set()
    items = 0
    for lang in TARGET_LANGUAGES:
        langs.append(lang)
        one = EvalConfig(tasks=("zsre",), languages=(lang,), strategy="zero-shot", limit=limit)
        for work in Planner(benchmark, one, strategy, Abilities()):
            prompts.add(work.request.prompt or "")
            items += 1
        if len(prompts) >= calls:
            break
    config = EvalConfig(tasks=("zsre",), languages=tuple(langs), strategy="zero-shot",
                        limit=limit, likelihood=False)
    return config, len(prompts), items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default=None,
                        help="BMIKE-53 folder (default: $MIKE_DATA_DIR, then ../shared/bmike53)")
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--latency", type=float, default=0.2, help="server latency (s)")
    args = parser.parse_args()
    import os

    data_dir = args.data_dir or os.environ.get("MIKE_DATA_DIR") or "../shared/bmike53"
    benchmark = Benchmark(data_dir)
    config, calls, items = sized_config(benchmark, int(args.rpm * args.seconds / 60))
    server = LoopbackServer(rpm=args.rpm, latency_s=args.latency)
    limits = Limits(rpm=args.rpm, retry=RetryPolicy(base_wait_s=0.2, max_wait_s=5,
                                                    deadline_s=300))
    with tempfile.TemporaryDirectory() as tmp:
        with ResponseCache(Path(tmp) / "cache") as cache:
            evaluator = Evaluator(LoopbackBackend(server.url), benchmark=benchmark, cache=cache,
                                  progress=False, limits=limits)
            started = time.monotonic()
            summary = evaluator.run(config, Path(tmp) / "run")
            wall = time.monotonic() - started
        rows = [json.loads(line) for line in row_lines(Path(tmp) / "run")]
    server.close()
    answered = sum(1 for r in rows if r["answer"] == "Paris" and not r.get("error"))
    ok = server.statuses[200]
    span = server.times[-1] - server.times[0] if len(server.times) > 1 else wall
    achieved = (ok - 1) / span * 60 if span > 0 else 0.0
    print(f"target rpm {args.rpm:.0f}, {calls} distinct requests ({items} items), "
          f"server latency {args.latency}s, 8 in flight")
    print(f"achieved: {achieved:.1f} requests/min over {span:.1f}s "
          f"({100 * achieved / args.rpm:.1f}% of target; whole run {wall:.1f}s)")
    print(f"429s received: {server.statuses[429]} (retries {summary.totals.retries}, "
          f"rate_limited {summary.totals.rate_limited})")
    print(f"items lost: {items - answered} of {items}")
    print(f"bodies answered more than once: {sum(1 for n in server.answered.values() if n > 1)}")


if __name__ == "__main__":
    main()
