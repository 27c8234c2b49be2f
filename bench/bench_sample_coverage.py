"""Coverage of ``--sample`` intervals on a real model, and what ``--target-ci`` saves.

Reads a run folder that evaluated every item of a slice (e.g. the embedded model,
``mike eval --backend hf --tasks zsre --languages de,ru,zh --limit 120 --strategy
zero-shot``) and, with no new call, draws SEEDS seeded samples of N items from it: the
items ``--sample N --seed S`` takes among the slice's positions (a position's rank does
not depend on how many there are, so these are the first N of the seed's permutation
that fall in the slice). For each seed and metric it computes the sampled estimate of
the average over target languages with its 95% interval (the report's stratified
bootstrap, :func:`mike_sdk.sampling.rounds.language_averages`: positions resampled jointly
across languages, and, for comparison, each language resampled on its own as the report
did before it resampled positions jointly too) and, through ``mike report``'s own code
(:func:`mike_sdk.report.stats.compute_stats`, the average over target languages other
than the source), prints the share of seeds whose interval holds the full slice's mean, and the
mean absolute error.

A slice of P items is a finite population: a sample of N of them varies less than the
bootstrap (which assumes an endless one) says, by sqrt(1 - N/P); the expected coverage
is printed beside the measured one.

Then the ``--target-ci`` rounds (:mod:`mike_sdk.sampling.rounds`: the same rule) over the
slice for each WIDTH: items and requests used against the full slice.

    python bench/bench_sample_coverage.py RUN_DIR [--seeds 200] [--n 50] [--widths 2,5]
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path

from mike_sdk.report.runs import RunScores
from mike_sdk.report.stats import ALL, GroupStat, compute_stats
from mike_sdk.runfolder.files import ResultRow
from mike_sdk.runfolder.rundir import iter_result_rows
from mike_sdk.sampling.positions import permutation
from mike_sdk.sampling.rounds import (
    FIRST_ROUND,
    SCORERS,
    half_widths,
    language_averages,
    next_size,
)


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def coverage(rows: list[ResultRow], population: dict[str, int], seeds: int, n: int,
             paired: bool) -> None:
    full = language_averages(rows, paired=paired)
    hits: dict[tuple[str, str, str], int] = defaultdict(int)
    errors: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for seed in range(seeds):
        keep = {t: set(permutation(t, size, seed)[:n]) for t, size in population.items()}
        sample = [r for r in rows if r.index in keep[r.task]]
        for key, est in language_averages(sample, paired=paired).items():
            truth = full[key].mean
            hits[key] += est.low <= truth <= est.high
            errors[key].append(abs(est.mean - truth))
    for key, est in full.items():
        task, metric, source = key
        fpc = math.sqrt(1 - n / population[task])
        expected = 2 * normal_cdf(1.96 / fpc) - 1
        print(f"{'paired' if paired else 'per-language'} {task} {source} {metric:12} "
              f"full mean {est.mean:6.2f}  coverage "
              f"{100 * hits[key] / seeds:5.1f}% of {seeds} seeds (expected with a "
              f"population of {population[task]}: {100 * expected:4.1f}%)  mean abs error "
              f"{statistics.mean(errors[key]):5.2f} points")


def report_averages(rows: list[ResultRow]) -> dict[tuple[str, str, str], GroupStat]:
    """``mike report``'s average over every target language (its default scorer)."""
    run = RunScores(Path("."), "sample", None, None)
    for row in rows:
        run.add(row)
    scorer = next(s for s in SCORERS if s in run.scorers)
    return {(g.task, g.metric, g.source): g for g in compute_stats([run]).groups
            if g.grouping == ALL and g.scorer == scorer}


def report_coverage(rows: list[ResultRow], population: dict[str, int], seeds: int,
                    n: int) -> None:
    """The same coverage for the intervals ``mike report`` prints (its own code path)."""
    full = report_averages(rows)
    hits: dict[tuple[str, str, str], int] = defaultdict(int)
    for seed in range(seeds):
        keep = {t: set(permutation(t, size, seed)[:n]) for t, size in population.items()}
        for key, group in report_averages([r for r in rows if r.index in keep[r.task]]).items():
            hits[key] += group.estimate.low <= full[key].estimate.mean <= group.estimate.high
    for (task, metric, source), group in full.items():
        print(f"mike report {task} {source} {metric:12} ({group.languages} languages, "
              f"{group.scorer}) full mean {group.estimate.mean:6.2f}  coverage "
              f"{100 * hits[(task, metric, source)] / seeds:5.1f}% of {seeds} seeds")


def rounds(rows: list[ResultRow], population: dict[str, int], widths: list[float]) -> None:
    total = len(rows)
    for width in widths:
        for task, size in population.items():
            order = permutation(task, size, 0)
            n, steps = min(FIRST_ROUND, size), 1
            while True:
                keep = set(order[:n])
                now = half_widths([r for r in rows if r.task == task and r.index in keep])
                worst = max(now.get(task, {}).values(), default=0.0)
                if worst <= width or n >= size:
                    break
                n, steps = next_size(n, worst, width, size), steps + 1
            used = sum(1 for r in rows if r.task == task and r.index in keep)
            print(f"--target-ci {width:g} {task}: {n} of {size} items in {steps} rounds, "
                  f"widest half-width {worst:.2f}; {used} of {total} requests "
                  f"({100 * used / total:.0f}% of the full slice)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--widths", default="2,5")
    args = parser.parse_args()
    rows = [r for r in iter_result_rows(Path(args.run_dir)) if r.error is None]
    population: dict[str, int] = {t: 1 + max(r.index for r in rows if r.task == t)
                                  for t in {r.task for r in rows}}
    print(f"{len(rows)} rows, items per task: {population}")
    for paired in (True, False):  # positions resampled jointly; each language on its own
        coverage(rows, population, args.seeds, args.n, paired)
    report_coverage(rows, population, args.seeds, args.n)
    rounds(rows, population, [float(w) for w in args.widths.split(",")])


if __name__ == "__main__":
    main()
