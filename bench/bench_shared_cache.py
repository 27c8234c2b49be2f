"""Two processes, one response cache, the same requests: what is paid, and how long it takes.

Each process asks the mock backend (``--latency`` seconds a call) for the same ``--n``
unique requests through a :class:`ModelClient` on one fresh cache folder, both starting
at once. Without leases (``shared=False``: the cache as it was before them) both send
nearly everything; with leases each request is sent once in total, the two processes
share the work batch by batch, and each reads the other's answers from the cache.

    python bench/bench_shared_cache.py [--n 464] [--latency 0.05] [--processes 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from mike_sdk.backend import GenerationRequest
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient


def worker(folder: str, args: argparse.Namespace, shared: bool, barrier: Any,
           results: Any) -> None:
    """One process: every request, through a client on the shared cache folder."""
    backend = MockBackend(latency_s=args.latency, batch_size=args.batch_size)
    requests = [GenerationRequest(prompt=f"Question {i}: who leads Acme?")
                for i in range(args.n)]
    with ResponseCache(folder) as cache:
        client = ModelClient(backend, cache=cache, concurrency=args.concurrency, shared=shared)
        barrier.wait(60)
        start = time.perf_counter()
        answers = client.generate_sync(requests)
        elapsed = time.perf_counter() - start
    results.put((len(backend.requests), sum(a.cached for a in answers), elapsed))


def run(args: argparse.Namespace, shared: bool) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(args.processes), ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="mike-shared-cache-") as folder:
        procs = [ctx.Process(target=worker, args=(folder, args, shared, barrier, results))
                 for _ in range(args.processes)]
        for proc in procs:
            proc.start()
        reports = [results.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join()
        with ResponseCache(Path(folder)) as cache:
            stored = len(cache)
    sent = [r[0] for r in reports]
    label = "leases (shared=True) " if shared else "no leases (before)   "
    print(f"{label}: requests sent {sum(sent):5d} for {args.n} unique "
          f"(per process {'+'.join(map(str, sent))}), cached answers read "
          f"{sum(r[1] for r in reports)}, stored {stored}, "
          f"wall {max(r[2] for r in reports):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=464, help="unique requests (default 464)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight, each")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.processes} processes x {args.n} requests, mock latency {args.latency} s, "
          f"batches of {args.batch_size}, {args.concurrency} in flight each")
    run(args, shared=False)
    run(args, shared=True)


if __name__ == "__main__":
    main()
