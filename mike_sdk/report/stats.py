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
    #: Scores (or paired differences) by item position.
    Items = dict[int, float]

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
                    items: dict[tuple[str, str, str, str], dict[str, Items]],
                    groupings: list[str], resamples: int, seed: int, name: str,
                    ) -> list[tuple[tuple[str, str, str, str], str, str, int, Strata]]:
    """Averages over each group of languages of ``strata[(task, metric, source, scorer)]``.

    Positions are resampled jointly across the group's languages (they share positions,
    and an item hard in one language is hard in the others); only a language whose items
    are not known by position (an unpaired difference) falls back to averaging
    independent per-language replicates."""
    out = []
    for key, by_lang in sorted(strata.items()):
        known = items.get(key, {})
        task, metric, source, scorer = key
        for grouping in groupings:
            for group, codes in group_members(by_lang, source, grouping).items():
                if len(codes) == 1:
                    found = by_lang[codes[0]]  # the language's own interval
                elif all(c in known for c in codes):
                    rng = bs.rng_for(seed, f"{name}{task}/{source}/{metric}/{scorer}"
                                           f"/{grouping}:{group}")
                    found = bs.joint_average([known[c] for c in codes], resamples, rng)
                else:
                    found = bs.average([by_lang[c] for c in codes])
                out.append((key, grouping, group, len(codes), found))
    return out


def _run_strata(run: RunScores, resamples: int, seed: int,
                ) -> tuple[dict[tuple[str, str, str, str], dict[str, Strata]],
                           dict[tuple[str, str, str, str], dict[str, Items]]]:
    """Per-language means and replicates, and the scores by position behind them."""
    strata: dict[tuple[str, str, str, str], dict[str, Strata]] = defaultdict(dict)
    items: dict[tuple[str, str, str, str], dict[str, Items]] = defaultdict(dict)
    for cell, by_scorer in sorted(run.scores.items()):
        for scorer, by_id in by_scorer.items():
            values = list(by_id.values())
            reps = bs.replicates(values, resamples, bs.rng_for(seed, cell_key(cell, scorer)))
            key = (cell.task, cell.metric, cell.source, scorer)
            strata[key][cell.target] = (sum(values) / len(values), reps, len(values))
            items[key][cell.target] = {run.positions[i]: v for i, v in by_id.items()}
    return strata, items


def _diff_strata(run: RunScores, base: RunScores, own: dict[tuple[str, str, str, str],
                 dict[str, Strata]], theirs: dict[tuple[str, str, str, str], dict[str, Strata]],
                 resamples: int, seed: int,
                 ) -> tuple[dict[tuple[str, str, str, str], dict[str, Strata]],
                            dict[tuple[str, str, str, str], dict[str, Items]]]:
    """Per-language differences, and the paired ones' per-position differences."""
    diffs: dict[tuple[str, str, str, str], dict[str, Strata]] = defaultdict(dict)
    items: dict[tuple[str, str, str, str], dict[str, Items]] = defaultdict(dict)
    for cell in sorted(run.scores.keys() & base.scores.keys()):
        for scorer in sorted(run.scores[cell].keys() & base.scores[cell].keys()):
            key = (cell.task, cell.metric, cell.source, scorer)
            rng = bs.rng_for(seed, "diff/" + cell_key(cell, scorer))
            a, b = run.scores[cell][scorer], base.scores[cell][scorer]
            found = bs.paired_difference(a, b, resamples, rng)
            if found is None:
                # No shared items: independent resampling of each run.
                (pa, ra, na), (pb, rb, nb) = own[key][cell.target], theirs[key][cell.target]
                found = (pa - pb, ra - rb, min(na, nb))
            else:
                items[key][cell.target] = {run.positions[i]: a[i] - b[i]
                                           for i in a.keys() & b.keys()}
            diffs[key][cell.target] = found
    return diffs, items


def compute_stats(runs: list[RunScores], resamples: int = bs.DEFAULT_RESAMPLES,
                  seed: int = bs.DEFAULT_SEED) -> ReportStats:
    """Every per-language, group and difference estimate of ``runs`` (the first is the
    baseline of the differences)."""
    groupings = [ALL, *GROUPINGS]
    scores: list[ScoreStat] = []
    groups: list[GroupStat] = []
    per_run = {}
    for run in runs:
        strata, items = _run_strata(run, resamples, seed)
        per_run[run.label] = strata
        for (task, metric, source, scorer), by_lang in strata.items():
            for target, (point, reps, n) in sorted(by_lang.items()):
                scores.append(ScoreStat(run=run.label, task=task, metric=metric, source=source,
                                        target=target, scorer=scorer,
                                        estimate=bs.estimate(point, reps, n)))
        for (task, metric, source, scorer), grouping, group, count, (p, r, n) in \
                _group_averages(strata, items, groupings, resamples, seed, "group/"):
            groups.append(GroupStat(run=run.label, task=task, metric=metric, source=source,
                                    grouping=grouping, group=group, languages=count,
                                    scorer=scorer, estimate=bs.estimate(p, r, n)))
    diffs: list[DiffStat] = []
    base = runs[0]
    for run in runs[1:]:
        strata, diff_items = _diff_strata(run, base, per_run[run.label],
                                          per_run[base.label], resamples, seed)
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
                _group_averages(strata, diff_items, [ALL, "script class"], resamples, seed,
                                "group-diff/"):
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
