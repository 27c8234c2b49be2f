"""Every number of a report: per-language means, group averages and run differences, each
with its bootstrap interval (see :mod:`mike_sdk.report.bootstrap`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

from mike_sdk.data.families import GROUPINGS, LANGUAGE_INFO, group_of
from mike_sdk.report import bootstrap as bs
from mike_sdk.report.runs import Cell, RunScores

if TYPE_CHECKING:
    Strata = tuple[float, bs.Floats, int]

ALL = "all"
"""Grouping (and group) name of the average over every target language."""


class ScoreStat(BaseModel):
    """One run's score on one task x metric x source x target language."""

    model_config = ConfigDict(frozen=True)

    run: str
    task: str
    metric: str
    source: str
    target: str
    scorer: str
    estimate: bs.Estimate


class GroupStat(BaseModel):
    """Unweighted average over the target languages of a group (all, Latin, a family...)."""

    model_config = ConfigDict(frozen=True)

    run: str
    task: str
    metric: str
    source: str
    grouping: str
    """``all`` or a key of :data:`mike_sdk.data.families.GROUPINGS`."""
    group: str
    languages: int
    scorer: str
    estimate: bs.Estimate


class DiffStat(BaseModel):
    """``run - baseline`` on one language (``target``) or averaged over a group."""

    model_config = ConfigDict(frozen=True)

    run: str
    baseline: str
    task: str
    metric: str
    source: str
    grouping: str
    """``language`` for one target language, else as in :class:`GroupStat`."""
    group: str
    """The target language code, or the group name."""
    scorer: str
    paired: bool
    """Paired by item id (False: the runs share no items there; resampled independently)."""
    estimate: bs.Estimate


class ReportStats(BaseModel):
    """All numbers of one report."""

    runs: list[str]
    scorers: list[str]
    resamples: int
    seed: int
    scores: list[ScoreStat]
    groups: list[GroupStat]
    diffs: list[DiffStat]
    # Per run: (task, metric, source, scorer) -> target -> (mean, replicates, n); kept so
    # that other tables showing the same scores reuse these draws (not serialised).
    _strata: dict[str, Any] = PrivateAttr(default_factory=dict)

    def strata(self, run: str) -> dict[tuple[str, str, str, str], dict[str, Strata]]:
        """The means and bootstrap replicates behind ``scores`` for one run."""
        found: dict[tuple[str, str, str, str], dict[str, Strata]] = self._strata.get(run, {})
        return found


def cell_key(cell: Cell, scorer: str) -> str:
    """The name a cell's scores draw their bootstrap generator from."""
    # The run is not part of the key: a run's numbers do not depend on its label.
    return f"{cell.task}/{cell.source}>{cell.target}/{cell.metric}/{scorer}"


def group_members(targets: Iterable[str], source: str,
                  grouping: str) -> dict[str, list[str]]:
    """The target languages each group of ``grouping`` (or :data:`ALL`) averages over."""
    # The paper averages over the target languages other than the edit's own.
    langs = sorted(lang for lang in targets if lang != source and lang in LANGUAGE_INFO)
    members: dict[str, list[str]] = defaultdict(list)
    for lang in langs:
        members[ALL if grouping == ALL else group_of(lang, grouping)].append(lang)
    return dict(sorted(members.items()))


def _group_averages(strata: dict[tuple[str, str, str, str], dict[str, Strata]],
                    groupings: list[str]) -> list[tuple[tuple[str, str, str, str], str, str,
                                                       int, Strata]]:
    """Averages over each group of languages of ``strata[(task, metric, source, scorer)]``."""
    out = []
    for key, by_lang in sorted(strata.items()):
        for grouping in groupings:
            for group, codes in group_members(by_lang, key[2], grouping).items():
                out.append((key, grouping, group, len(codes),
                            bs.average([by_lang[c] for c in codes])))
    return out


def _run_strata(run: RunScores, resamples: int, seed: int,
                ) -> dict[tuple[str, str, str, str], dict[str, Strata]]:
    strata: dict[tuple[str, str, str, str], dict[str, Strata]] = defaultdict(dict)
    for cell, by_scorer in sorted(run.scores.items()):
        for scorer, items in by_scorer.items():
            values = list(items.values())
            reps = bs.replicates(values, resamples, bs.rng_for(seed, cell_key(cell, scorer)))
            strata[(cell.task, cell.metric, cell.source, scorer)][cell.target] = (
                sum(values) / len(values), reps, len(values))
    return strata


def _diff_strata(run: RunScores, base: RunScores, own: dict[tuple[str, str, str, str],
                 dict[str, Strata]], theirs: dict[tuple[str, str, str, str], dict[str, Strata]],
                 resamples: int, seed: int,
                 ) -> dict[tuple[str, str, str, str], dict[str, Strata]]:
    diffs: dict[tuple[str, str, str, str], dict[str, Strata]] = defaultdict(dict)
    for cell in sorted(run.scores.keys() & base.scores.keys()):
        for scorer in sorted(run.scores[cell].keys() & base.scores[cell].keys()):
            key = (cell.task, cell.metric, cell.source, scorer)
            rng = bs.rng_for(seed, "diff/" + cell_key(cell, scorer))
            found = bs.paired_difference(run.scores[cell][scorer], base.scores[cell][scorer],
                                         resamples, rng)
            if found is None:
                # No shared items: independent resampling of each run.
                (pa, ra, na), (pb, rb, nb) = own[key][cell.target], theirs[key][cell.target]
                found = (pa - pb, ra - rb, min(na, nb))
            diffs[key][cell.target] = found
    return diffs


def compute_stats(runs: list[RunScores], resamples: int = bs.DEFAULT_RESAMPLES,
                  seed: int = bs.DEFAULT_SEED) -> ReportStats:
    """Every per-language, group and difference estimate of ``runs`` (the first is the
    baseline of the differences)."""
    groupings = [ALL, *GROUPINGS]
    scores: list[ScoreStat] = []
    groups: list[GroupStat] = []
    per_run = {}
    for run in runs:
        strata = _run_strata(run, resamples, seed)
        per_run[run.label] = strata
        for (task, metric, source, scorer), by_lang in strata.items():
            for target, (point, reps, n) in sorted(by_lang.items()):
                scores.append(ScoreStat(run=run.label, task=task, metric=metric, source=source,
                                        target=target, scorer=scorer,
                                        estimate=bs.estimate(point, reps, n)))
        for (task, metric, source, scorer), grouping, group, count, (p, r, n) in \
                _group_averages(strata, groupings):
            groups.append(GroupStat(run=run.label, task=task, metric=metric, source=source,
                                    grouping=grouping, group=group, languages=count,
                                    scorer=scorer, estimate=bs.estimate(p, r, n)))
    diffs: list[DiffStat] = []
    base = runs[0]
    for run in runs[1:]:
        strata = _diff_strata(run, base, per_run[run.label], per_run[base.label],
                                 resamples, seed)
        shared = {cell: bool(run.scores[cell].keys() & base.scores[cell].keys())
                  for cell in run.scores.keys() & base.scores.keys()}
        common = {"run": run.label, "baseline": base.label}
        for (task, metric, source, scorer), by_lang in sorted(strata.items()):
            for target, (point, reps, n) in sorted(by_lang.items()):
                items_a = run.scores[Cell(task, metric, source, target)][scorer]
                items_b = base.scores[Cell(task, metric, source, target)][scorer]
                diffs.append(DiffStat(**common, task=task, metric=metric, source=source,
                                      grouping="language", group=target, scorer=scorer,
                                      paired=bool(items_a.keys() & items_b.keys()),
                                      estimate=bs.estimate(point, reps, n)))
        for (task, metric, source, scorer), grouping, group, _count, (p, r, n) in \
                _group_averages(strata, [ALL, "script class"]):
            cells = [c for c in shared if (c.task, c.metric, c.source) == (task, metric, source)]
            diffs.append(DiffStat(**common, task=task, metric=metric, source=source,
                                  grouping=grouping, group=group, scorer=scorer,
                                  paired=all(shared[c] for c in cells),
                                  estimate=bs.estimate(p, r, n)))
    scorers = [s for run in runs for s in run.scorers]
    stats = ReportStats(runs=[r.label for r in runs], scorers=list(dict.fromkeys(scorers)),
                        resamples=resamples, seed=seed, scores=scores, groups=groups,
                        diffs=diffs)
    stats._strata = per_run
    return stats
