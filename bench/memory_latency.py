"""Edit-memory retrieval latency and memory at 1k, 10k and 100k edits (exact search).

The store and the index are measured with a random-vector embedder of the real
dimension (384: MiniLM and e5-small), so the figures are the memory's own cost; the
cost of embedding one question with each real embedder is measured apart and adds
to every search.

    python bench/memory_latency.py [--sizes 1000,10000,100000] [--dim 384]
        [--embedders all-MiniLM-L6-v2,multilingual-e5-small-q4,use-multilingual-v3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mike_sdk.memory import EditMemory
from mike_sdk.prompts.embeddings import get_embedder


class RandomEmbedder:
    """Unit vectors from a seeded generator: costs next to nothing."""

    def __init__(self, dim: int) -> None:
        self.name = f"random-{dim}"
        self.dim = dim
        self.rng = np.random.default_rng(0)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"median {1000 * statistics.median(samples):.2f} ms, p95 {1000 * p95:.2f} ms"


def measure(size: int, dim: int, folder: Path) -> None:
    path = folder / f"m{size}.sqlite"
    embedder = RandomEmbedder(dim)
    memory = EditMemory(path, embedder=embedder, threshold=-1)
    before = rss_mb()
    start = time.perf_counter()
    for first in range(0, size, 10_000):
        last = min(size, first + 10_000)
        memory.add_many([{"id": f"e{n}", "question": f"Who founded company {n}?",
                          "answer": f"Founder {n}"} for n in range(first, last)])
    added = time.perf_counter() - start
    memory.search("warm-up")
    searches = []
    for _ in range(200):
        t = time.perf_counter()
        memory.search("Who founded company 7?", k=5)
        searches.append(time.perf_counter() - t)
    batch_t = time.perf_counter()
    memory.search_many([f"q{n}" for n in range(100)], k=5)
    batch = (time.perf_counter() - batch_t) / 100
    deletes = []
    for n in range(20):
        t = time.perf_counter()
        memory.delete(f"e{n}")
        deletes.append(time.perf_counter() - t)
    grown = rss_mb() - before
    memory.close()
    reopened = EditMemory(path, embedder=embedder)
    t = time.perf_counter()
    reopened.search("first search loads the index")
    load = time.perf_counter() - t
    reopened.close()
    print(f"{size:>7} edits: add {added:.2f} s ({size / added:,.0f}/s); search k=5 {ms(searches)}"
          f"; batched {1000 * batch:.2f} ms/question; delete {ms(deletes)}; index "
          f"{size * dim * 4 / 2**20:.1f} MiB of vectors, process grew {grown:.0f} MiB; file "
          f"{path.stat().st_size / 2**20:.1f} MiB; reopen + first search {load:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--embedders", default="", help="real embedders to time per question")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            measure(size, args.dim, Path(folder))
    for name in filter(None, args.embedders.split(",")):
        embedder = get_embedder(name)
        embedder.encode(["warm-up"])
        times = []
        for n in range(20):
            t = time.perf_counter()
            embedder.encode([f"Wer hat die Firma {n} gegründet?"])
            times.append(time.perf_counter() - t)
        print(f"embedding one question with {name}: {ms(times)}")


if __name__ == "__main__":
    main()
