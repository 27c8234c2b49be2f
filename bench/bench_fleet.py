"""Throughput of a fleet of 1, 2 and 3 servers that each serve one request at a time.

The whole SDK path runs, as a user's evaluation would: the OpenAI backend in chat mode
with several base URLs, the evaluator, the one call path (cache, call guard,
concurrency limit) and real BMIKE-53 prompts. Each configuration gets a fresh cache.

Two kinds of server:

* ``latency`` (default): ``latency_server.py serial``, a loopback server that answers
  one request at a time after a fixed service time. It stands in for a GPU server, whose
  work happens on its own hardware: what is measured is how well the routing keeps
  every server busy (the target is at least 2.5x one server's throughput with three).
* ``llama`` (``--llama``): real llama.cpp servers with SmolLM2, one thread each. On a
  machine with fewer cores than servers they share the cores, so this shows the routing
  on real servers rather than the scaling of separate machines.

Rounds alternate the fleet sizes so that a noisy moment weighs on all of them.

    python bench/bench_fleet.py --data-dir ../shared/bmike53 [--llama]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench_concurrency import free_port, wait_up

from mike_sdk import EvalConfig
from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.evaluator import Evaluator

HERE = Path(__file__).resolve().parent
LANGUAGES = ("de", "fr", "es", "zh", "ru")


@contextlib.contextmanager
def latency_servers(n: int, service_s: float) -> Iterator[list[str]]:
    ports = [free_port() for _ in range(n)]
    procs = [subprocess.Popen([sys.executable, str(HERE / "latency_server.py"), str(port),
                               str(service_s), "serial"]) for port in ports]
    try:
        for port in ports:
            wait_up(f"http://127.0.0.1:{port}")
        yield [f"http://127.0.0.1:{port}/v1" for port in ports]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def llama_servers(n: int) -> Iterator[list[str]]:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from servers import llama_server

    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as stack:
        yield [stack.enter_context(llama_server(Path(logs), threads=1))[0] for _ in range(n)]


def one_run(urls: list[str], data_dir: str, items: int, model: str) -> tuple[int, float, int]:
    """(calls, wall seconds, errors) of one evaluation through a fleet of ``urls``."""
    config = EvalConfig(tasks=("zsre",), languages=LANGUAGES, limit=items,
                        language_id="script", likelihood=False, strategy="zero-shot")
    backend = OpenAIBackend(model, base_url=urls if len(urls) > 1 else urls[0],
                            api_key="bench-key-not-secret", max_concurrency=1, timeout=60)
    with tempfile.TemporaryDirectory() as tmp, ResponseCache(Path(tmp) / "cache") as cache:
        client = ModelClient(backend, cache=cache)
        evaluator = Evaluator(client, benchmark=Benchmark(data_dir), progress=False)
        start = time.perf_counter()
        summary = evaluator.run(config, Path(tmp) / "run")
        wall = time.perf_counter() - start
    return summary.totals.backend_calls_this_session, wall, summary.totals.errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "bmike53"))
    parser.add_argument("--items", type=int, default=15, help="items per language "
                        "(x 5 languages x 4 metrics requests, less repeated prompts)")
    parser.add_argument("--service", type=float, default=0.05, help="latency servers: "
                        "seconds per request")
    parser.add_argument("--llama", action="store_true", help="real llama.cpp servers")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kind = "llama.cpp SmolLM2, 1 thread each" if args.llama else \
        f"one at a time, {args.service * 1000:.0f} ms per request"
    print(f"servers: {kind}; zsRE zero-shot, {len(LANGUAGES)} languages x {args.items} items")
    print(f"{'servers':>7} {'round':>5} {'calls':>6} {'wall s':>7} {'req/s':>7} "
          f"{'vs one':>6} {'errors':>6}")
    sizes = (1, 2, 3)
    rates: dict[int, list[float]] = {n: [] for n in sizes}
    with (llama_servers(3) if args.llama else latency_servers(3, args.service)) as urls:
        model = "smollm2" if args.llama else "bench-model"
        for round_ in range(1, args.repeat + 1):
            for n in sizes:
                calls, wall, errors = one_run(urls[:n], args.data_dir, args.items, model)
                rates[n].append(calls / wall)
                ratio = rates[n][-1] / rates[1][-1]
                print(f"{n:7d} {round_:5d} {calls:6d} {wall:7.2f} {calls / wall:7.1f} "
                      f"{ratio:5.2f}x {errors:6d}", flush=True)
    print("median over rounds:")
    base = sorted(rates[1])[len(rates[1]) // 2]
    for n in sizes:
        median = sorted(rates[n])[len(rates[n]) // 2]
        print(f"  {n} server(s): {median:7.1f} req/s = {median / base:4.2f}x one server")


if __name__ == "__main__":
    main()
