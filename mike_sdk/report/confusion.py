"""Language confusion in a report: how often answers are in the wrong language, per target
language and averaged over groups of languages, with bootstrap intervals, and the scores
with the wrong-language answers left out.

The labels and both definitions come from the run itself (:mod:`mike_sdk.scoring.confusion`,
:func:`mike_sdk.run.results.wrong_language_share`, :data:`mike_sdk.run.results.KEPT_LABELS`): a
per-metric number here is the ``wrong_language`` / ``in_language`` of ``summary.json``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from mike_sdk.report import bootstrap as bs
from mike_sdk.report.runs import Cell, RunScores
from mike_sdk.report.stats import ALL, ReportStats, cell_key, group_members
from mike_sdk.run.results import KEPT_LABELS, WRONG_LABELS, decided, wrong_language_share
from mike_sdk.scoring.confusion import LABELS

if TYPE_CHECKING:
    Strata = tuple[float, bs.Floats, int]

ALL_METRICS = "all"
"""Metric name of the answers to every metric pooled (each answer counts once)."""
#: Groupings the run differences are averaged over (as for the score differences).
DIFF_GROUPINGS = (ALL, "script class")


class ConfusionStat(BaseModel):
    """One run's answer languages on one task x metric x source x target language."""

    model_config = ConfigDict(frozen=True)

    run: str
    task: str
    metric: str
    """A metric, or :data:`ALL_METRICS`."""
    source: str
    target: str
    counts: dict[str, int]
    """Answers per label: target, source, other, neutral."""
    wrong: bs.Estimate | None
    """% of the decided answers in the source or another language; None if none decided."""
    scores: dict[str, bs.Estimate]
    """Plain mean score x 100 per scorer, over every answer."""
    kept: dict[str, bs.Estimate]
    """The same over the target-language and neutral answers (absent when there are none)."""

    @property
    def n(self) -> int:
        """Labelled answers."""
        return sum(self.counts.values())

    @property
    def decided(self) -> int:
        """Answers whose language was decided (not neutral)."""
        return decided(self.counts)


class ConfusionGroup(BaseModel):
    """Unweighted average over the target languages of a group (all, Latin, a family...)."""

    model_config = ConfigDict(frozen=True)

    run: str
    task: str
    metric: str
    source: str
    grouping: str
    group: str
    languages: int
    """Languages in the group."""
    counts: dict[str, int]
    """Answers per label, summed over the group's languages."""
    wrong_languages: int
    """Languages with a decided answer: the ones ``wrong`` averages over."""
    wrong: bs.Estimate | None
    scores: dict[str, bs.Estimate]
    kept: dict[str, bs.Estimate]
    kept_languages: dict[str, int]
    """Per scorer, the languages ``kept`` averages over (those with an answer kept)."""

    @property
    def decided(self) -> int:
        """Answers whose language was decided (not neutral)."""
        return decided(self.counts)


class ConfusionDiff(BaseModel):
    """``run - baseline`` of the wrong-language share, on one language or a group."""

    model_config = ConfigDict(frozen=True)

    run: str
    baseline: str
    task: str
    metric: str
    source: str
    grouping: str
    """``language`` for one target language, else as in :class:`ConfusionGroup`."""
    group: str
    paired: bool
    """Paired over the answers both runs decided (False: none in common)."""
    estimate: bs.Estimate


class ConfusionStats(BaseModel):
    """Every language-confusion number of a report."""

    runs: list[str]
    methods: dict[str, str | None]
    """Per run, the detection method of its ``summary.json`` (None if it does not say)."""
    scorers: list[str]
    cells: list[ConfusionStat]
    groups: list[ConfusionGroup]
    diffs: list[ConfusionDiff]


def _pooled_labels(run: RunScores) -> dict[Cell, dict[str, str]]:
    """Labels per metric, and per task x source x target with every metric pooled."""
    out: dict[Cell, dict[str, str]] = {}
    for cell, labels in run.labels.items():
        out[cell] = labels
        out.setdefault(cell._replace(metric=ALL_METRICS), {}).update(labels)
    return out


def _pooled_scores(run: RunScores) -> dict[Cell, dict[str, dict[str, float]]]:
    """Scores per scorer and id, per metric and with every metric pooled (as the labels)."""
    out: dict[Cell, dict[str, dict[str, float]]] = {}
    for cell, by_scorer in run.scores.items():
        out[cell] = by_scorer
        pooled = out.setdefault(cell._replace(metric=ALL_METRICS), {})
        for scorer, items in by_scorer.items():
            pooled.setdefault(scorer, {}).update(items)
    return out


def _wrong_values(labels: dict[str, str]) -> dict[str, float]:
    """1 for a wrong-language answer, 0 for a target one, by id; neutral ones left out."""
    return {i: float(label in WRONG_LABELS) for i, label in labels.items()
            if label != "neutral"}


def _strata(values: list[float], resamples: int, seed: int, key: str) -> Strata:
    reps = bs.replicates(values, resamples, bs.rng_for(seed, key))
    return sum(values) / len(values), reps, len(values)


def _run_cells(run: RunScores, scorers: list[str], resamples: int, seed: int,
               known: dict[tuple[str, str, str, str], dict[str, Strata]],
               ) -> tuple[list[ConfusionStat], dict[tuple[str, str, str, str], dict[str, Strata]]]:
    """Per-cell stats and their strata by (task, metric, source, quantity) and target;
    ``known``: the score tables' strata, reused for the plain per-metric scores."""
    cells: list[ConfusionStat] = []
    strata: dict[tuple[str, str, str, str], dict[str, Strata]] = defaultdict(dict)
    pooled_scores = _pooled_scores(run)
    for cell, labels in sorted(_pooled_labels(run).items()):
        name = f"confusion/{cell.task}/{cell.source}>{cell.target}/{cell.metric}"
        key = (cell.task, cell.metric, cell.source)
        counts: dict[str, int] = {label: 0 for label in LABELS}
        for label in labels.values():
            counts[label] = counts.get(label, 0) + 1
        wrong = None
        values = list(_wrong_values(labels).values())
        if values:
            found = _strata(values, resamples, seed, name)
            share = wrong_language_share(counts)
            assert share is not None  # values non-empty: something was decided
            # The point is the summary's own number; the replicates give its interval.
            wrong = bs.estimate(share / 100, found[1], found[2])
            strata[(*key, "wrong")][cell.target] = found
        scores, kept = {}, {}
        for scorer in scorers:
            items = pooled_scores.get(cell, {}).get(scorer, {})
            if not items:
                continue
            # Per metric, the score tables' own draw: the same interval in both places.
            drawn = known.get((*key, scorer), {}).get(cell.target)
            found = drawn or _strata(list(items.values()), resamples, seed,
                                     f"{name}/{scorer}" if cell.metric == ALL_METRICS
                                     else cell_key(cell, scorer))
            scores[scorer] = bs.estimate(*found)
            strata[(*key, f"score/{scorer}")][cell.target] = found
            kept_values = [v for i, v in items.items() if labels.get(i) in KEPT_LABELS]
            if kept_values:
                found = _strata(kept_values, resamples, seed, f"{name}/kept/{scorer}")
                kept[scorer] = bs.estimate(*found)
                strata[(*key, f"kept/{scorer}")][cell.target] = found
        cells.append(ConfusionStat(run=run.label, task=cell.task, metric=cell.metric,
                                   source=cell.source, target=cell.target, counts=counts,
                                   wrong=wrong, scores=scores, kept=kept))
    return cells, strata


def _average(by_lang: dict[str, Strata], codes: list[str]) -> tuple[bs.Estimate | None, int]:
    """Stratified average over the ``codes`` that have a value, and how many had one."""
    parts = [by_lang[c] for c in codes if c in by_lang]
    return (bs.estimate(*bs.average(parts)) if parts else None), len(parts)


def _run_groups(run: str, cells: list[ConfusionStat], scorers: list[str],
                strata: dict[tuple[str, str, str, str], dict[str, Strata]],
                groupings: list[str]) -> list[ConfusionGroup]:
    by_key: dict[tuple[str, str, str], dict[str, ConfusionStat]] = defaultdict(dict)
    for c in cells:
        by_key[(c.task, c.metric, c.source)][c.target] = c
    out = []
    for (task, metric, source), by_target in sorted(by_key.items()):
        key = (task, metric, source)
        for grouping in groupings:
            for group, codes in group_members(by_target, source, grouping).items():
                counts: dict[str, int] = {label: sum(by_target[c].counts[label] for c in codes)
                          for label in LABELS}
                wrong, wrong_langs = _average(strata.get((*key, "wrong"), {}), codes)
                scores, kept, kept_langs = {}, {}, {}
                for scorer in scorers:
                    plain, _ = _average(strata.get((*key, f"score/{scorer}"), {}), codes)
                    if plain is not None:
                        scores[scorer] = plain
                    inside, count = _average(strata.get((*key, f"kept/{scorer}"), {}), codes)
                    if inside is not None:
                        kept[scorer], kept_langs[scorer] = inside, count
                out.append(ConfusionGroup(
                    run=run, task=task, metric=metric, source=source, grouping=grouping,
                    group=group, languages=len(codes), counts=counts,
                    wrong_languages=wrong_langs, wrong=wrong, scores=scores, kept=kept,
                    kept_languages=kept_langs))
    return out


def _diffs(run: RunScores, base: RunScores, own: dict[tuple[str, str, str, str],
           dict[str, Strata]], theirs: dict[tuple[str, str, str, str], dict[str, Strata]],
           resamples: int, seed: int) -> list[ConfusionDiff]:
    mine, other = _pooled_labels(run), _pooled_labels(base)
    common = {"run": run.label, "baseline": base.label}
    found: dict[tuple[str, str, str], dict[str, tuple[Strata, bool]]] = defaultdict(dict)
    for cell in sorted(mine.keys() & other.keys()):
        a, b = _wrong_values(mine[cell]), _wrong_values(other[cell])
        if not a or not b:
            continue  # a share missing on either side: no difference to speak of
        name = f"confusion-diff/{cell.task}/{cell.source}>{cell.target}/{cell.metric}"
        key = (cell.task, cell.metric, cell.source)
        pair = bs.paired_difference(a, b, resamples, bs.rng_for(seed, name))
        if pair is None:
            # No answer decided in both runs: each run resampled independently.
            (pa, ra, na), (pb, rb, nb) = (own[(*key, "wrong")][cell.target],
                                          theirs[(*key, "wrong")][cell.target])
            found[key][cell.target] = ((pa - pb, ra - rb, min(na, nb)), False)
        else:
            found[key][cell.target] = (pair, True)
    out = []
    for (task, metric, source), by_lang in sorted(found.items()):
        where = {"task": task, "metric": metric, "source": source}
        for target, (strata, paired) in sorted(by_lang.items()):
            out.append(ConfusionDiff(**common, **where, grouping="language", group=target,
                                     paired=paired, estimate=bs.estimate(*strata)))
        for grouping in DIFF_GROUPINGS:
            for group, codes in group_members(by_lang, source, grouping).items():
                out.append(ConfusionDiff(
                    **common, **where, grouping=grouping, group=group,
                    paired=all(by_lang[c][1] for c in codes),
                    estimate=bs.estimate(*bs.average([by_lang[c][0] for c in codes]))))
    return out


def compute_confusion(runs: list[RunScores], scorers: list[str],
                      resamples: int = bs.DEFAULT_RESAMPLES, seed: int = bs.DEFAULT_SEED,
                      groupings: list[str] | None = None,
                      stats: ReportStats | None = None) -> ConfusionStats | None:
    """Every language-confusion number of ``runs`` (the first is the baseline of the
    differences), with ``scorers`` beside; None when no run has labelled answers.
    ``stats``: the score tables of the same runs, resamples and seed, whose draws the
    plain per-metric scores reuse rather than draw again."""
    from mike_sdk.data.families import GROUPINGS

    if not any(run.labels for run in runs):
        return None
    groupings = groupings or [ALL, *GROUPINGS]
    cells: list[ConfusionStat] = []
    groups: list[ConfusionGroup] = []
    strata = {}
    for run in runs:
        known = stats.strata(run.label) if stats is not None else {}
        found, strata[run.label] = _run_cells(run, scorers, resamples, seed, known)
        cells += found
        groups += _run_groups(run.label, found, scorers, strata[run.label], groupings)
    diffs: list[ConfusionDiff] = []
    for run in runs[1:]:
        diffs += _diffs(run, runs[0], strata[run.label], strata[runs[0].label], resamples,
                        seed)
    return ConfusionStats(runs=[r.label for r in runs],
                          methods={r.label: r.detection for r in runs}, scorers=scorers,
                          cells=cells, groups=groups, diffs=diffs)
