"""A fully cached re-run of one whole configuration, end to end, results written.

Fills a fresh response cache with an answer for every request of the configuration
(about 532,000 generations plus the likelihood scores), then times the evaluator
over it with the embedded model's backend, whose model must never load. The first
run also identifies each answer's language (lingua, when installed) and keeps the
verdicts beside the cache, as the run that paid for the answers would have; the
second, into a fresh run folder, is the fully cached re-run. Target: at least 10,000
items/s with a peak memory under 500 MB for every process (the tokenizer's ~340 MB
included). The re-run uses the evaluator's helper processes (``--processes``: the
default is one per core, up to 4; ``--processes 1`` for the run's process alone).
``cpu_s`` adds the helpers' CPU time to the run's; ``cpu_items_per_s`` divides by it
instead of the wall time (on a shared machine the wall time measures the other
processes too); ``children_peak_rss_mb`` is the largest helper's peak.
``bench/bench_run_size.py`` then measures the folder it wrote.

Measured (``--reuse --language-id script``, 531,504 rows, fresh processes, a 2-core
machine otherwise quiet): one process 59.4 s (8,947 items/s), peak RSS 452 MB; two
processes 32.1 s (16,534 items/s, 62.7 CPU-s in all), peak RSS 428 MB (run) and 414 MB
(helper); with one core kept busy, 47.6 s (11,163 items/s); rows, stored requests and
summary results identical (docs/scaling.md: the figures).

``--reuse`` keeps a cache (and its language verdicts) that an earlier run of the same
configuration filled, and times the cached re-run only: the way to compare two versions
of the code on one cache.

    python bench/bench_cached_rerun.py [DATA_DIR] [--limit N] [--out bench/out] [--reuse]
                                       [--fill-only] [--processes N]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

from mike_sdk.backend import BACKENDS, Generation, Likelihood
from mike_sdk.calls.cache import ResponseCache, request_key
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.run.likelihood import likelihood_requests
from mike_sdk.run.plan import Planner
from mike_sdk.runfolder.rundir import results_file
from mike_sdk.strategy import get_strategy


def fill_cache(cache: ResponseCache, benchmark: Benchmark, config: EvalConfig,
               evaluator: Evaluator) -> int:
    """Store a plausible answer for every request the run will make."""
    backend = evaluator.backend
    identity = backend.identity
    planner = Planner(benchmark, config, get_strategy(config.strategy), backend.abilities)
    batch: list[tuple[str, dict[str, object]]] = []
    stored = 0
    for work in planner:
        answer = work.gold if work.item.index % 3 else work.item.source.alt
        gen = Generation(text=answer + '" Question', input_tokens=600, output_tokens=4,
                         finish_reason="stop")
        batch.append((request_key(identity, "generate", work.request), gen.model_dump()))
        for req in likelihood_requests([work], config, backend.abilities).get(work.id, ()):
            score = Likelihood(logprob=-2.0 * len(req.continuation), tokens=3)
            batch.append((request_key(identity, "loglikelihood", req), score.model_dump()))
        if len(batch) >= 20000:
            cache.put_many(batch)
            stored += len(batch)
            batch = []
    cache.put_many(batch)
    return stored + len(batch)


def _cpu_s() -> float:
    """CPU seconds of this process and of its ended children (the helper processes)."""
    used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default="../shared/bmike53")
    parser.add_argument("--limit", type=int, help="items per test file (default: all)")
    parser.add_argument("--out", default="bench/out/cached_rerun")
    parser.add_argument("--language-id", default="auto", choices=("auto", "script", "lingua"))
    parser.add_argument("--reuse", action="store_true",
                        help="keep the cache an earlier run of this configuration filled")
    parser.add_argument("--processes", type=int,
                        help="processes of the re-run, helpers included (default: the "
                             "evaluator's own choice, one per core up to 4)")
    parser.add_argument("--fill-only", action="store_true",
                        help="fill the cache (and run the first run), then stop: time the "
                             "re-run later with --reuse, in a fresh process")
    args = parser.parse_args()
    out = Path(args.out)
    filled = out / "cache" / f"filled-{args.limit or 'all'}-{args.language_id}"
    if args.reuse and filled.is_file():
        shutil.rmtree(out / "run", ignore_errors=True)
    else:
        shutil.rmtree(out, ignore_errors=True)
    benchmark = Benchmark(args.data_dir)
    config = EvalConfig(limit=args.limit, language_id=args.language_id)
    backend = BACKENDS.create("hf")
    with ResponseCache(out / "cache") as cache:
        evaluator = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False)
        if not filled.is_file():
            start = time.perf_counter()
            stored = fill_cache(cache, benchmark, config, evaluator)
            print(f"cache filled: {stored} entries in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            first = evaluator.run(config, out / "first")
            method = first.language_detection.method if first.language_detection else "none"
            print(f"first run (answers cached, languages identified): "
                  f"{first.totals.rows / (time.perf_counter() - start):.0f} items/s, "
                  f"language id {method}")
            filled.touch()
        else:
            print(f"reusing the cache in {out / 'cache'}")
        if args.fill_only:
            return
        start, cpu = time.perf_counter(), _cpu_s()
        evaluator.processes = args.processes
        summary = evaluator.run(config, out / "run")
        elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu
    rows = summary.totals.rows
    size_mb = results_file(out / "run").stat().st_size / 2**20
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The helpers, and the first run's lingua worker (without --reuse): no process's
    # memory goes unreported.
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"rows={rows} cache_hits={summary.totals.cache_hits} "
          f"backend_calls={evaluator.calls} model_loaded={backend.model is not None}")
    print(f"time_s={elapsed:.1f} items_per_s={rows / elapsed:.0f} cpu_s={cpu:.1f} "
          f"cpu_items_per_s={rows / cpu:.0f} results_mb={size_mb:.0f} peak_rss_mb={peak_mb:.0f} "
          f"children_peak_rss_mb={child_mb:.0f}")
    calls_ok = evaluator.calls == 0 and backend.model is None
    ok = rows / elapsed >= 10000 and max(peak_mb, child_mb) < 500 and calls_ok
    print(f"target >= 10000 items/s, every peak RSS < 500 MB, no backend call: "
          f"{'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
