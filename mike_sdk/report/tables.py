"""The report's tables, as data (rendered to Markdown and HTML) and as long-format CSV."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from pydantic import BaseModel

from mike_sdk.data.families import GROUPINGS, LANGUAGE_INFO, language_label
from mike_sdk.report.stats import ALL, DiffStat, GroupStat, ReportStats, ScoreStat

METRICS = ("reliability", "generality", "locality", "portability")


class Table(BaseModel):
    """A titled grid of strings."""

    title: str
    note: str = ""
    header: list[str]
    rows: list[list[str]]


def _metrics(found: set[str]) -> list[str]:
    return [m for m in METRICS if m in found] + sorted(found - set(METRICS))


def source_suffix(source: str, sources: set[str]) -> str:
    return f" (source {source})" if len(sources) > 1 or source != "en" else ""


def averages_table(stats: ReportStats, run: str) -> Table:
    """Task x metric rows, one column per scorer: the mean over all target languages."""
    found = [g for g in stats.groups if g.run == run and g.grouping == ALL]
    scorers = [s for s in stats.scorers if any(g.scorer == s for g in found)]
    cells: dict[tuple[str, str, str], dict[str, GroupStat]] = defaultdict(dict)
    for g in found:
        cells[(g.task, g.source, g.metric)][g.scorer] = g
    rows = []
    for (task, source, metric), by in cells.items():
        first = next(iter(by.values()))
        rows.append([task, source, metric, str(first.languages),
                     *(by[s].estimate.text() if s in by else "-" for s in scorers)])
    rows.sort(key=lambda r: (r[0], r[1], METRICS.index(r[2]) if r[2] in METRICS else 9))
    return Table(title=f"{run}: averages over target languages",
                 note="Unweighted mean over target languages (the source language excluded) "
                      "of each language's mean x 100, with 95% bootstrap intervals.",
                 header=["task", "source", "metric", "languages", *scorers], rows=rows)


def grouping_tables(stats: ReportStats, run: str, scorer: str) -> list[Table]:
    """Per grouping and task: groups as rows, metrics as columns, for one scorer."""
    tables = []
    for grouping, meaning in GROUPINGS.items():
        found = [g for g in stats.groups if g.run == run and g.grouping == grouping
                 and g.scorer == scorer]
        by_task: dict[tuple[str, str], list[GroupStat]] = defaultdict(list)
        for g in found:
            by_task[(g.task, g.source)].append(g)
        sources = {s for _, s in by_task}
        for (task, source), items in sorted(by_task.items()):
            metrics = _metrics({g.metric for g in items})
            grid: dict[str, dict[str, GroupStat]] = defaultdict(dict)
            for g in items:
                grid[g.group][g.metric] = g
            rows = [[group, str(max(g.languages for g in by.values())),
                     *(by[m].estimate.text() if m in by else "-" for m in metrics)]
                    for group, by in sorted(grid.items())]
            tables.append(Table(
                title=f"{run}: {task}{source_suffix(source, sources)} by {grouping}, "
                      f"scorer {scorer}",
                note=f"Groups: {meaning}. Mean over the group's languages x 100 [95% CI].",
                header=[grouping, "languages", *(f"{m} ({scorer})" for m in metrics)],
                rows=rows))
    return tables


def language_tables(stats: ReportStats, run: str) -> list[Table]:
    """Per task and scorer: target languages as rows, metrics as columns."""
    by_key: dict[tuple[str, str, str], list[ScoreStat]] = defaultdict(list)
    for s in stats.scores:
        if s.run == run:
            by_key[(s.task, s.source, s.scorer)].append(s)
    sources = {k[1] for k in by_key}
    tables = []
    order = {s: i for i, s in enumerate(stats.scorers)}
    for (task, source, scorer), items in sorted(by_key.items(),
                                                key=lambda kv: (kv[0][0], kv[0][1],
                                                                order[kv[0][2]])):
        metrics = _metrics({s.metric for s in items})
        grid: dict[str, dict[str, ScoreStat]] = defaultdict(dict)
        for s in items:
            grid[s.target][s.metric] = s
        rows = []
        for lang, by in sorted(grid.items()):
            info = LANGUAGE_INFO.get(lang)
            rows.append([language_label(lang), info.script if info else "?",
                         info.family if info else "?",
                         str(max(s.estimate.n for s in by.values())),
                         *(by[m].estimate.text() if m in by else "-" for m in metrics)])
        tables.append(Table(title=f"{run}: {task}{source_suffix(source, sources)} per "
                                  f"language, scorer {scorer}",
                            note="Mean x 100 [95% bootstrap CI]; n = items.",
                            header=["language", "script", "family", "n",
                                    *(f"{m} ({scorer})" for m in metrics)],
                            rows=rows))
    return tables


def _diff_text(d: DiffStat) -> str:
    return d.estimate.text(signed=True) + (" *" if d.estimate.excludes_zero else "")


def difference_tables(stats: ReportStats, scorer: str) -> list[Table]:
    """Each run minus the baseline: averages (all scorers), then per language (one scorer)."""
    tables = []
    for run in stats.runs[1:]:
        found = [d for d in stats.diffs if d.run == run]
        if not found:
            continue
        base = found[0].baseline
        rows = [[d.task, d.source, d.metric, d.group if d.grouping != ALL else "all",
                 d.scorer, _diff_text(d), "yes" if d.estimate.excludes_zero else "no",
                 "paired" if d.paired else "unpaired"]
                for d in found if d.grouping != "language"]
        rows.sort(key=lambda r: (r[0], r[1], METRICS.index(r[2]) if r[2] in METRICS else 9,
                                 r[3] != "all", r[3], stats.scorers.index(r[4])))
        tables.append(Table(
            title=f"{run} minus {base}: averages over target languages",
            note="Difference of means x 100 with its 95% paired bootstrap interval (items "
                 "paired by id, resampled within each language); * = the interval excludes 0.",
            header=["task", "source", "metric", "languages", "scorer", "difference [95% CI]",
                    "excludes 0", "pairing"], rows=rows))
        per_lang: dict[tuple[str, str], list[DiffStat]] = defaultdict(list)
        for d in found:
            if d.grouping == "language" and d.scorer == scorer:
                per_lang[(d.task, d.source)].append(d)
        for (task, source), items in sorted(per_lang.items()):
            metrics = _metrics({d.metric for d in items})
            grid: dict[str, dict[str, DiffStat]] = defaultdict(dict)
            for d in items:
                grid[d.group][d.metric] = d
            tables.append(Table(
                title=f"{run} minus {base}: {task} (source {source}) per language, "
                      f"scorer {scorer}",
                note="* = the 95% paired bootstrap interval excludes 0.",
                header=["language", *(f"{m} ({scorer})" for m in metrics)],
                rows=[[language_label(lang), *(_diff_text(by[m]) if m in by else "-"
                                               for m in metrics)]
                      for lang, by in sorted(grid.items())]))
    return tables


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table under a heading."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"### {table.title}", ""]
    if table.note:
        out += [table.note, ""]
    out += [line(table.header), line(["---"] * len(table.header)),
            *(line(r) for r in table.rows)]
    return "\n".join(out) + "\n"


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def csv_files(stats: ReportStats) -> dict[str, str]:
    """Long-format CSV (one estimate per line, every scorer) by file name."""
    est = ["n", "mean", "ci_low", "ci_high"]
    scores = csv_text(["run", "task", "metric", "source_lang", "target_lang", "language", "script",
                   "family", "scorer", *est],
                  [[s.run, s.task, s.metric, s.source, s.target, language_label(s.target),
                    LANGUAGE_INFO[s.target].script if s.target in LANGUAGE_INFO else "",
                    LANGUAGE_INFO[s.target].family if s.target in LANGUAGE_INFO else "",
                    s.scorer, s.estimate.n, s.estimate.mean, s.estimate.low, s.estimate.high]
                   for s in stats.scores])
    groups = csv_text(["run", "task", "metric", "source_lang", "grouping", "group", "languages",
                   "scorer", *est],
                  [[g.run, g.task, g.metric, g.source, g.grouping, g.group, g.languages,
                    g.scorer, g.estimate.n, g.estimate.mean, g.estimate.low, g.estimate.high]
                   for g in stats.groups])
    files = {"scores.csv": scores, "averages.csv": groups}
    if stats.diffs:
        files["differences.csv"] = csv_text(
            ["run", "baseline", "task", "metric", "source_lang", "grouping", "group", "scorer",
             "paired", "n", "difference", "ci_low", "ci_high", "excludes_zero"],
            [[d.run, d.baseline, d.task, d.metric, d.source, d.grouping, d.group, d.scorer,
              d.paired, d.estimate.n, d.estimate.mean, d.estimate.low, d.estimate.high,
              d.estimate.excludes_zero] for d in stats.diffs])
    return files
