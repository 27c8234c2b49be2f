"""``--target-ci W``: evaluate in rounds along the seeded permutation until each task's
estimate is as precise as asked.

Round one takes :data:`FIRST_ROUND` items per task. After each round, every task still
open gets, per source language and metric, the 95% interval of its average over target
languages (the report's stratified bootstrap, :mod:`mike_sdk.report.bootstrap`, on the
report's default scorer); a task stops when every half-width is at most ``W`` points or
its items (or ``--sample N``) run out. Otherwise its next round size is projected from
the widest interval (width shrinks as one over the square root of the items).

Every decision is a function of the rows alone (a fixed bootstrap seed), so a resumed
run replays the earlier rounds from its folder without a call and goes on where it
stopped; the run folder keeps one configuration throughout.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mike_sdk.report import bootstrap as bs
from mike_sdk.run.config import EvalConfig
from mike_sdk.runfolder.files import ResultRow, SampleRecord, Summary
from mike_sdk.runfolder.rundir import final_rows, write_summary
from mike_sdk.sampling.positions import positions

if TYPE_CHECKING:
    from mike_sdk.run.evaluator import Evaluator

#: Runs one round: items per task to take from the permutation -> the run's summary.
RoundRunner = Callable[[dict[str, int]], Awaitable[Summary]]

__all__ = ["FIRST_ROUND", "half_widths", "language_averages", "next_size", "run_rounds"]

#: Items per task in the first round.
FIRST_ROUND = 50
#: The smallest and largest growth of a task from one round to the next.
MIN_STEP = 25
MAX_GROWTH = 4
#: The scorers the rule reads, in order of preference (the report's default scorer).
SCORERS = ("paper_f1", "token_f1", "em")


def language_averages(rows: Iterable[ResultRow], *, resamples: int = bs.DEFAULT_RESAMPLES,
                      seed: int = bs.DEFAULT_SEED, paired: bool = True,
                      ) -> dict[tuple[str, str, str], bs.Estimate]:
    """Per ``(task, metric, source)``, the average over target languages of the rows'
    scores (the report's default scorer) with its 95% percentile bootstrap interval.

    ``paired`` resamples item positions jointly across languages, as the report does
    (:func:`mike_sdk.report.bootstrap.joint_average`); ``paired=False`` resamples each
    language on its own, only to measure how much that undercovers
    (``bench/bench_sample_coverage.py``).
    """
    scores: dict[tuple[str, str, str], dict[str, dict[int, float]]] = defaultdict(
        lambda: defaultdict(dict))
    scorer: dict[str, str] = {}
    for row in rows:
        name = scorer.setdefault(row.task, next(s for s in SCORERS if s in row.scores))
        scores[(row.task, row.metric, row.source_lang)][row.target_lang][row.index] = \
            row.scores.get(name, 0.0)
    out = {}
    for (task, metric, source), languages in sorted(scores.items()):
        key = f"{task}/{metric}/{source}"
        by_lang = [values for _, values in sorted(languages.items())]
        if paired:
            found = bs.joint_average(by_lang, resamples, bs.rng_for(seed, key))
        else:
            found = bs.average([(sum(values.values()) / len(values),
                                 bs.replicates(list(values.values()), resamples,
                                               bs.rng_for(seed, f"{key}>{target}")),
                                 len(values)) for target, values in sorted(languages.items())])
        out[(task, metric, source)] = bs.estimate(*found)
    return out


def half_widths(rows: Iterable[ResultRow], *, resamples: int = bs.DEFAULT_RESAMPLES,
                seed: int = bs.DEFAULT_SEED) -> dict[str, dict[str, float]]:
    """Per task and metric, the widest half-width (points) over source languages of the
    95% interval of the average over target languages."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (task, metric, _), est in language_averages(rows, resamples=resamples,
                                                     seed=seed).items():
        width = round((est.high - est.low) / 2, 4)
        out[task][metric] = max(out[task].get(metric, 0.0), width)
    return dict(out)


def next_size(size: int, width: float, target: float, limit: int) -> int:
    """The next round's items for a task at ``size`` items whose widest half-width is
    ``width``: the projected size for ``target``, at least :data:`MIN_STEP` more and at
    most :data:`MAX_GROWTH` times more, never past ``limit``."""
    projected = math.ceil(size * (width / target) ** 2)
    return min(limit, max(size + MIN_STEP, min(projected, MAX_GROWTH * size)))


def _rows_within(rows: list[ResultRow], config: EvalConfig, sizes: dict[str, int],
                 available: dict[str, int]) -> list[ResultRow]:
    """The rows of the positions the current round sizes take (a folder resumed in an
    earlier round may hold some of a later round's rows)."""
    keep = {t: positions(t, available[t], sizes[t], config.seed) for t in sizes}
    return [r for r in rows if r.task in keep and r.index in keep[r.task]]


async def run_rounds(evaluator: Evaluator, config: EvalConfig, run_dir: str | Path, *,
                     retry_errors: bool = False,
                     one_round: RoundRunner | None = None) -> Summary:
    """Run ``config`` (which has ``target_ci``) in rounds into ``run_dir``; the summary's
    ``sampling`` says how many items each task took, in how many rounds, and the widths
    reached. ``one_round`` runs one round's sizes (default: the evaluator, live; batch mode
    passes its own)."""
    assert config.target_ci is not None
    target = config.target_ci
    first = FIRST_ROUND if config.sample is None else min(FIRST_ROUND, config.sample)
    sizes: dict[str, int] = dict.fromkeys(config.tasks, first)
    rounds = 0
    wall = 0.0
    widths: dict[str, dict[str, float]] = {}
    while True:
        rounds += 1
        if one_round is not None:
            summary = await one_round(dict(sizes))
        else:
            summary = await evaluator.arun(config, run_dir, sizes=dict(sizes),
                                           retry_errors=retry_errors and rounds == 1)
        wall += summary.totals.wall_time_s
        if evaluator.stopped or summary.stopped or summary.sampling is None:
            return summary
        available = summary.sampling.available
        rows = _rows_within(list(final_rows(Path(run_dir))), config, sizes, available)
        now = half_widths(rows)
        grow: dict[str, int] = {}
        for task in sizes:
            limit = min(config.sample or available[task], available[task])
            widths[task] = now.get(task, {})
            worst = max(widths[task].values(), default=0.0)
            if worst > target and sizes[task] < limit:
                grow[task] = next_size(sizes[task], worst, target, limit)
        if not grow:
            break
        sizes.update(grow)
    record = SampleRecord(seed=config.seed, target_ci=target, available=available,
                          items={t: min(sizes[t], available[t]) for t in sizes},
                          half_width=widths, rounds=rounds)
    # The session's time is that of every round (its calls already count every round).
    totals = summary.totals.model_copy(update={"wall_time_s": round(wall, 3)})
    summary = summary.model_copy(update={"sampling": record, "totals": totals})
    write_summary(Path(run_dir), summary)
    return summary

