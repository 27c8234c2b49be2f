"""A fully cached re-run of the README's slice, timed as a user meets it: ``mike eval`` in a
fresh process, from start to exit.

The slice is the README's main command (CounterFact, en>de and en>zh, ``--limit 3``, the
embedded Gemma 3 270M: 24 rows). A fresh response cache gets a plausible answer for every
request without the model (as ``bench_cached_rerun.py`` fills it), one in-process run
identifies the answers' languages (kept beside the cache, as the run that paid for the
answers would have), then ``mike eval`` runs ``--repeat`` times in fresh processes:

* into a fresh run folder each time (answers cached, every row scored again): the figure
  the target is about;
* into the same, finished run folder (nothing left to do: the README command run twice).

One more fresh-folder run under ``python -X importtime`` says whether torch or
transformers were imported. Target: median under 2 s, neither imported.

The embedded model's tokenizer comes from its converted folder in the user cache (or
``$MIKE_CACHE_DIR``); the first run ever converts it (a minute or two, not timed).

    python bench/bench_small_rerun.py [DATA_DIR] [--repeat 3] [--out bench/out/small_rerun]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cached_rerun import fill_cache

from mike_sdk.backend import BACKENDS
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator

TARGET_S = 2.0
HEAVY = ("torch", "transformers")


def eval_command(data_dir: str, cache: Path, run_dir: Path) -> list[str]:
    """The README's command, with the bench's cache and run folders."""
    return [sys.executable, "-m", "mike_sdk.cli.main", "eval", "--data-dir", data_dir,
            "--tasks", "counterfact", "--languages", "de,zh", "--limit", "3",
            "--cache-dir", str(cache), "--run-dir", str(run_dir), "--no-progress"]


def timed(command: list[str]) -> float:
    """Wall time of one fresh process; fails loudly if the command fails."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return elapsed


def heavy_imports(command: list[str]) -> list[str]:
    """Which of :data:`HEAVY` a run imports (read from ``-X importtime``)."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True,
                          text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    return [name for name in HEAVY if name in imported]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default="../shared/bmike53")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default="bench/out/small_rerun")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    data_dir = str(Path(args.data_dir).resolve())
    cache_dir = out / "cache"
    config = EvalConfig(tasks=("counterfact",), languages=("de", "zh"), limit=3)
    backend = BACKENDS.create("hf")
    with ResponseCache(cache_dir) as cache:
        evaluator = Evaluator(backend, benchmark=Benchmark(data_dir), cache=cache,
                              progress=False)
        stored = fill_cache(cache, evaluator.benchmark, config, evaluator)
        first = evaluator.run(config, out / "first")
    print(f"cache filled: {stored} entries; first run: {first.totals.rows} rows, "
          f"language id {first.language_detection.method if first.language_detection else '?'}")

    fresh = [timed(eval_command(data_dir, cache_dir, out / f"run-{i}"))
             for i in range(args.repeat)]
    again = [timed(eval_command(data_dir, cache_dir, out / "run-0"))
             for _ in range(args.repeat)]
    heavy = heavy_imports(eval_command(data_dir, cache_dir, out / "run-importtime"))
    median = statistics.median(fresh)
    print(f"fresh run folder: median {median:.2f} s over {args.repeat} "
          f"({', '.join(f'{t:.2f}' for t in fresh)})")
    print(f"same run folder (resume, nothing to do): median {statistics.median(again):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in again)})")
    print(f"heavy imports in a cached re-run: {', '.join(heavy) or 'none'}")
    ok = median < TARGET_S and not heavy
    print(f"target < {TARGET_S:.0f} s without torch/transformers: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
