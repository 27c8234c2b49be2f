"""10% of calls fail (mixed 429, 500, 503), and the run is SIGKILLed once and resumed.

The loopback server counts 200 answers per request body. The run (a subprocess,
8 calls in flight) is killed with SIGKILL once some rows are written, then the
same command resumes it to the end. Checks and prints: every item ends with an
answer; no item whose answer was cached (finished) before the kill is answered
again; bodies answered twice at all (only calls in flight at the kill may be:
the server answered, the killed client never received it).

    python bench/bench_faults.py [DATA_DIR] [--items 400] [--fail-rate 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback import LoopbackBackend, LoopbackServer, body_hash, body_of

from mike_sdk.calls.cache import ResponseCache, request_key
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.retry import RetryPolicy
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.run.plan import Planner
from mike_sdk.runfolder.rundir import row_lines
from mike_sdk.strategy import get_strategy

LIMITS = Limits(retry=RetryPolicy(max_attempts=12, base_wait_s=0.05, max_wait_s=1,
                                  deadline_s=120))


def child(url: str, data_dir: str, cache_dir: str, run_dir: str, config_json: str) -> None:
    """The run itself (killed and resumed by the parent)."""
    config = EvalConfig.model_validate_json(config_json)
    with ResponseCache(cache_dir) as cache:
        Evaluator(LoopbackBackend(url), benchmark=Benchmark(data_dir), cache=cache,
                  progress=False, chunk_size=16, limits=LIMITS).run(config, run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default=None)
    parser.add_argument("--items", type=int, default=400, help="work items (multiple of 4)")
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    data_dir = args.data_dir or os.environ.get("MIKE_DATA_DIR") or "../shared/bmike53"
    benchmark = Benchmark(data_dir)
    config = EvalConfig(tasks=("zsre",), languages=("de",), strategy="zero-shot",
                        limit=max(1, args.items // 4), likelihood=False)
    backend = LoopbackBackend("http://unused")
    planner = Planner(benchmark, config, get_strategy("zero-shot"), backend.abilities)
    body_by_key = {request_key(backend.identity, "generate", w.request): body_hash(
        body_of(w.request)) for w in planner}
    items = config.limit * 4 if config.limit else 0
    server = LoopbackServer(fail_rate=args.fail_rate, latency_s=0.05, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir, run_dir = Path(tmp) / "cache", Path(tmp) / "run"
        command = [sys.executable, __file__, "--child", server.url, data_dir, str(cache_dir),
                   str(run_dir), config.model_dump_json()]
        proc = subprocess.Popen(command)
        while proc.poll() is None:
            if run_dir.is_dir() and sum(1 for _ in row_lines(run_dir)) >= items // 3:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait()
        killed_at = time.monotonic()
        killed = proc.returncode == -signal.SIGKILL
        with ResponseCache(cache_dir) as cache:
            finished = set(cache.get_many(body_by_key))
        rows_at_kill = sum(1 for _ in row_lines(run_dir))
        started = time.monotonic()
        subprocess.run(command, check=True)
        resume_s = time.monotonic() - started
        rows = [json.loads(line) for line in row_lines(run_dir)]
    server.close()
    answered = {r["id"] for r in rows if r["answer"] == "Paris" and not r.get("error")}
    twice = {b for b, n in server.answered.items() if n > 1}
    finished_twice = {body_by_key[k] for k in finished} & twice
    in_flight = {b for b in twice if server.first_answer[b] > killed_at - 1}
    print(f"{items} items, fail rate {args.fail_rate:.0%}, statuses {dict(server.statuses)}")
    print(f"killed with SIGKILL: {killed} after {rows_at_kill} rows "
          f"({len(finished)} answers cached); resumed in {resume_s:.1f}s")
    print(f"items with an answer: {len(answered)} of {items}; rows {len(rows)} "
          f"(distinct ids {len({r['id'] for r in rows})})")
    print(f"finished (cached) items sent again after the kill: {len(finished_twice)}")
    print(f"bodies answered twice in all: {len(twice)} (in flight at the kill: {len(in_flight)})")
    ok = (len(answered) == items and not finished_twice
          and len(rows) == len({r["id"] for r in rows}))
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
