"""Does ``--concurrency N`` reach N requests in flight, and keep them there?

A loopback OpenAI-compatible server (``latency_server.py``, in its own process) answers
every request after a fixed latency. The whole SDK path runs against it, as a user's
evaluation would: the real OpenAI SDK in chat mode, the evaluator, the one call path
(cache, call guard, concurrency limit), the real BMIKE-53 prompts. For each transport
and concurrency it prints the throughput against the ideal concurrency / latency, the
peak in flight the server saw, and the client's CPU time per request.

    python bench/bench_concurrency.py --data-dir ../shared/bmike53
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mike_sdk import EvalConfig
from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.limits import Limits
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.evaluator import Evaluator

HERE = Path(__file__).resolve().parent
LANGUAGES = ("de", "fr", "es", "zh", "ru")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_stats(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/stats", timeout=5) as reply:
        return dict(json.loads(reply.read()))


def wait_up(url: str) -> None:
    for _ in range(100):
        try:
            server_stats(url)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the latency server did not start")


def one_run(data_dir: str, requests: int, concurrency: int, latency: float,
            transport: str) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, str(HERE / "latency_server.py"), str(port),
                               str(latency)])
    try:
        wait_up(url)
        # 5 languages x 4 metrics per item; about 7% of the prompts repeat (the same
        # question under two metrics), hence 10% more items than requests / 20.
        config = EvalConfig(tasks=("zsre",), languages=LANGUAGES, limit=requests * 11 // 200,
                            language_id="script", likelihood=False)
        with tempfile.TemporaryDirectory() as tmp, ResponseCache(Path(tmp) / "cache") as cache:
            backend = OpenAIBackend("bench-model", base_url=f"{url}/v1",
                                    api_key="bench-key-not-secret", transport=transport,
                                    timeout=30)
            client = ModelClient(backend, cache=cache,
                                 limits=Limits(max_concurrency=concurrency))
            evaluator = Evaluator(client, benchmark=Benchmark(data_dir), progress=False)
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            summary = evaluator.run(config, Path(tmp) / "run")
            wall = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        stats = server_stats(url)
    finally:
        server.kill()
        server.wait()
    calls = summary.totals.backend_calls_this_session
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    ideal = concurrency / latency
    return {"calls": calls, "wall_s": wall, "rps": calls / wall, "ideal_rps": ideal,
            "ratio": calls / wall / ideal, "peak": stats["peak"],
            "served_ratio": stats["answered"] / stats["busy_s"] / ideal,
            "mean_in_flight": stats["mean_in_flight"],
            "cpu_ms_per_request": 1000 * cpu / max(calls, 1), "errors": summary.totals.errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "bmike53"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", default="32,64")
    parser.add_argument("--transports", default="httpx,aiohttp")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every configuration")
    args = parser.parse_args()
    print(f"{args.requests} requests, {args.latency * 1000:.0f} ms latency per request")
    print("ratio: calls / wall time of the whole run (planning and writing included) over "
          "concurrency / latency;\nserved: the same over the server's busy time (first request "
          "in to last answer out);\npeak, mean: requests in flight at the server, at most and on "
          "average over its busy time")
    print(f"{'transport':9} {'conc':>4} {'calls':>6} {'wall s':>7} {'req/s':>7} {'ideal':>6} "
          f"{'ratio':>6} {'served':>6} {'peak':>5} {'mean':>5} {'cpu ms/req':>10}")
    # Rounds alternate transports and concurrencies so that a noisy moment on a shared
    # machine does not land on one configuration only.
    for _ in range(args.repeat):
        for transport in args.transports.split(","):
            for conc in (int(c) for c in args.concurrency.split(",")):
                r = one_run(args.data_dir, args.requests, conc, args.latency, transport)
                print(f"{transport:9} {conc:4d} {r['calls']:6.0f} {r['wall_s']:7.2f} "
                      f"{r['rps']:7.1f} {r['ideal_rps']:6.1f} {r['ratio']:6.1%} "
                      f"{r['served_ratio']:6.1%} {r['peak']:5.0f} {r['mean_in_flight']:5.1f} "
                      f"{r['cpu_ms_per_request']:10.2f}", flush=True)


if __name__ == "__main__":
    main()
