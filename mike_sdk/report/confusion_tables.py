"""The language-confusion tables of a report (Markdown/HTML via :class:`Table`) and CSV."""

from __future__ import annotations

from collections import defaultdict

from mike_sdk.data.families import GROUPINGS, LANGUAGE_INFO, language_label
from mike_sdk.report import bootstrap as bs
from mike_sdk.report.confusion import (
    ALL_METRICS,
    ConfusionGroup,
    ConfusionStat,
    ConfusionStats,
)
from mike_sdk.report.stats import ALL
from mike_sdk.report.tables import METRICS, Table, csv_text, source_suffix
from mike_sdk.scoring.confusion import LABELS

SCRIPT_ONLY = "script-only"

_WRONG_NOTE = ("wrong language = % of the decided answers (target + source + other) that are "
               "in the edit's language (source) or a third one (other), 95% bootstrap CI over "
               "the decided answers; neutral answers (no letters, a gold identical in both "
               "languages, undecidable) count neither way, so read 'decided' first: '-' means "
               "nothing was decided, not 0%.")


def method_text(method: str | None) -> str:
    """The detection method as the report states it."""
    if method is None:
        return "unknown (summary.json does not say)"
    if method == SCRIPT_ONLY:
        return (f"{method}: answers in a script both the source and the target use (Latin "
                "for en>de, say) are undetermined, hence neutral; their shares rest on few "
                "decided answers")
    return method


def _share(est: bs.Estimate | None) -> str:
    return "-" if est is None else est.text()


def _counts(counts: dict[str, int]) -> list[str]:
    return [str(counts.get(label, 0)) for label in LABELS]


def _score_pair(stat: ConfusionStat | ConfusionGroup, scorer: str) -> list[str]:
    plain, kept = stat.scores.get(scorer), stat.kept.get(scorer)
    text = "-" if kept is None else kept.text()
    if isinstance(stat, ConfusionGroup) and kept is not None \
            and stat.kept_languages[scorer] != stat.languages:
        count = stat.kept_languages[scorer]
        text += f" ({count} language{'' if count == 1 else 's'})"
    return ["-" if plain is None else plain.text(), text]


def _header(scorer: str) -> list[str]:
    return ["n", "decided", *LABELS, "wrong language % [95% CI]", scorer,
            f"{scorer} in-language"]


def _note(stats: ConfusionStats, run: str, scorer: str, full: bool = False) -> str:
    """The detection method, then what the columns mean (in full once per run)."""
    if full:
        return (f"Detection: {method_text(stats.methods.get(run))}. {_WRONG_NOTE} {scorer}: "
                "mean x 100 [95% CI] over every answer, then over the target and neutral "
                "answers only (the wrong-language answers left out).")
    return (f"Detection: {stats.methods.get(run) or 'unknown'}. Wrong language: % of the "
            f"decided answers [95% CI], '-' = nothing decided; {scorer} in-language leaves "
            "the wrong-language answers out.")


def _metric_order(metric: str) -> int:
    return -1 if metric == ALL_METRICS else METRICS.index(metric) if metric in METRICS else 9


def confusion_averages_table(stats: ConfusionStats, run: str, scorer: str) -> Table | None:
    """Task x source x metric (every metric pooled first): the averages over targets."""
    found = [g for g in stats.groups if g.run == run and g.grouping == ALL]
    if not found:
        return None
    found.sort(key=lambda g: (g.task, g.source, _metric_order(g.metric)))
    rows = [[g.task, g.source, g.metric, f"{g.wrong_languages}/{g.languages}",
             str(sum(g.counts.values())), str(g.decided), *_counts(g.counts), _share(g.wrong),
             *_score_pair(g, scorer)] for g in found]
    return Table(title=f"{run}: language confusion, averages over target languages",
                 note=_note(stats, run, scorer, full=True) + " Unweighted mean of the "
                      "per-language numbers (the source language excluded) over the languages "
                      "with a decided answer (languages = those / all); counts are sums; "
                      "metric 'all' pools the answers to every metric.",
                 header=["task", "source", "metric", "languages", *_header(scorer)], rows=rows)


def confusion_grouping_tables(stats: ConfusionStats, run: str, scorer: str) -> list[Table]:
    """Per grouping and task: groups as rows, every metric's answers pooled."""
    tables = []
    for grouping, meaning in GROUPINGS.items():
        by_task: dict[tuple[str, str], list[ConfusionGroup]] = defaultdict(list)
        for g in stats.groups:
            if g.run == run and g.grouping == grouping and g.metric == ALL_METRICS:
                by_task[(g.task, g.source)].append(g)
        sources = {s for _, s in by_task}
        for (task, source), items in sorted(by_task.items()):
            tables.append(Table(
                title=f"{run}: {task}{source_suffix(source, sources)} language confusion by "
                      f"{grouping}",
                note=f"Groups: {meaning}. Every metric's answers pooled; languages = with a "
                     "decided answer / in the group. " + _note(stats, run, scorer),
                header=[grouping, "languages", *_header(scorer)],
                rows=[[g.group, f"{g.wrong_languages}/{g.languages}",
                       str(sum(g.counts.values())), str(g.decided), *_counts(g.counts),
                       _share(g.wrong), *_score_pair(g, scorer)] for g in items]))
    return tables


def confusion_language_tables(stats: ConfusionStats, run: str, scorer: str) -> list[Table]:
    """Per task (and source): target languages as rows, every metric's answers pooled."""
    by_task: dict[tuple[str, str], list[ConfusionStat]] = defaultdict(list)
    for c in stats.cells:
        if c.run == run and c.metric == ALL_METRICS:
            by_task[(c.task, c.source)].append(c)
    sources = {s for _, s in by_task}
    tables = []
    for (task, source), items in sorted(by_task.items()):
        rows = [[language_label(c.target),
                 LANGUAGE_INFO[c.target].script if c.target in LANGUAGE_INFO else "?",
                 str(c.n), str(c.decided), *_counts(c.counts), _share(c.wrong),
                 *_score_pair(c, scorer)] for c in sorted(items, key=lambda c: c.target)]
        tables.append(Table(
            title=f"{run}: {task}{source_suffix(source, sources)} language confusion per "
                  "language",
            note="Every metric's answers pooled (n = answers). " + _note(stats, run, scorer),
            header=["language", "script", *_header(scorer)], rows=rows))
    return tables


def confusion_comparison_tables(stats: ConfusionStats) -> list[Table]:
    """Several runs: the wrong-language share side by side, and each run minus the first."""
    if len(stats.runs) < 2:
        return []
    shares: dict[tuple[str, str], dict[tuple[str, str], dict[str, str]]] = defaultdict(
        lambda: defaultdict(dict))
    for g in stats.groups:
        if g.metric == ALL_METRICS and g.grouping in (ALL, "script class"):
            shares[(g.task, g.source)][(g.grouping, g.group)][g.run] = \
                f"{_share(g.wrong)} ({g.decided})"
    for c in stats.cells:
        if c.metric == ALL_METRICS:
            shares[(c.task, c.source)][("language", c.target)][c.run] = \
                f"{_share(c.wrong)} ({c.decided})"
    diffs: dict[tuple[str, str], dict[tuple[str, str], dict[str, str]]] = defaultdict(
        lambda: defaultdict(dict))
    for d in stats.diffs:
        if d.metric == ALL_METRICS:
            diffs[(d.task, d.source)][(d.grouping, d.group)][d.run] = (
                d.estimate.text(signed=True) + (" *" if d.estimate.excludes_zero else "")
                + ("" if d.paired else " unpaired"))
    base, others = stats.runs[0], stats.runs[1:]
    methods = "; ".join(f"{r}: {stats.methods.get(r) or 'unknown'}" for r in stats.runs)
    tables = []
    sources = {s for _, s in shares}
    for (task, source), rows_by in sorted(shares.items()):
        order = sorted(rows_by, key=lambda k: (k[0] != ALL, k[0] == "language", k[1]))
        rows = [[language_label(group) if grouping == "language" else group,
                 *(rows_by[(grouping, group)].get(r, "-") for r in stats.runs),
                 *(diffs[(task, source)][(grouping, group)].get(r, "-") for r in others)]
                for grouping, group in order]
        tables.append(Table(
            title=f"Language confusion: {task}{source_suffix(source, sources)} per run",
            note="Wrong-language % [95% CI] (decided answers in parentheses), every metric's "
                 f"answers pooled; detection {methods}. Differences: run minus {base} over "
                 "the answers both runs decided (paired by id, resampled within each language "
                 "for averages); "
                 "* = the interval excludes 0.",
            header=["target languages", *(f"{r} wrong %" for r in stats.runs),
                    *(f"{r} - {base}" for r in others)], rows=rows))
    return tables


def _est(est: bs.Estimate | None) -> list[object]:
    return ["", "", ""] if est is None else [est.mean, est.low, est.high]


def _score_columns(scorers: list[str]) -> list[str]:
    return [f"{s}{part}{end}" for s in scorers for part in ("", "_in_language")
            for end in ("", "_ci_low", "_ci_high")]


def _score_values(stat: ConfusionStat | ConfusionGroup, scorers: list[str]) -> list[object]:
    return [v for s in scorers for est in (stat.scores.get(s), stat.kept.get(s))
            for v in _est(est)]


def confusion_csv_files(stats: ConfusionStats) -> dict[str, str]:
    """``confusion.csv`` (per language), ``confusion_averages.csv`` and, for several runs,
    ``confusion_differences.csv``, with every metric and every scorer."""
    share = ["wrong_language", "ci_low", "ci_high"]
    files = {"confusion.csv": csv_text(
        ["run", "detection", "task", "metric", "source_lang", "target_lang", "language",
         "script", "family", "n", "decided", *LABELS, *share, *_score_columns(stats.scorers)],
        [[c.run, stats.methods.get(c.run) or "", c.task, c.metric, c.source, c.target,
          language_label(c.target),
          LANGUAGE_INFO[c.target].script if c.target in LANGUAGE_INFO else "",
          LANGUAGE_INFO[c.target].family if c.target in LANGUAGE_INFO else "",
          c.n, c.decided, *_counts(c.counts), *_est(c.wrong),
          *_score_values(c, stats.scorers)] for c in stats.cells]),
        "confusion_averages.csv": csv_text(
        ["run", "detection", "task", "metric", "source_lang", "grouping", "group",
         "languages", "decided_languages", "n", "decided", *LABELS, *share,
         *_score_columns(stats.scorers)],
        [[g.run, stats.methods.get(g.run) or "", g.task, g.metric, g.source, g.grouping,
          g.group, g.languages, g.wrong_languages, sum(g.counts.values()), g.decided,
          *_counts(g.counts), *_est(g.wrong), *_score_values(g, stats.scorers)]
         for g in stats.groups])}
    if stats.diffs:
        files["confusion_differences.csv"] = csv_text(
            ["run", "baseline", "task", "metric", "source_lang", "grouping", "group", "paired",
             "n", "difference", "ci_low", "ci_high", "excludes_zero"],
            [[d.run, d.baseline, d.task, d.metric, d.source, d.grouping, d.group, d.paired,
              d.estimate.n, d.estimate.mean, d.estimate.low, d.estimate.high,
              d.estimate.excludes_zero] for d in stats.diffs])
    return files
