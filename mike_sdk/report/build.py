"""``mike report --out``: tables (Markdown, CSV), figures (PNG) and one HTML page."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mike_sdk.errors import ConfigError
from mike_sdk.report import bootstrap as bs
from mike_sdk.report.confusion import ConfusionStats, compute_confusion
from mike_sdk.report.confusion_tables import (
    confusion_averages_table,
    confusion_comparison_tables,
    confusion_csv_files,
    confusion_grouping_tables,
    confusion_language_tables,
    method_text,
)
from mike_sdk.report.runs import RunScores, load_runs
from mike_sdk.report.sampled import shared_items_only
from mike_sdk.report.stats import ALL, ReportStats, compute_stats
from mike_sdk.report.tables import (
    Table,
    averages_table,
    csv_files,
    difference_tables,
    grouping_tables,
    language_tables,
    to_markdown,
)

FORMATS = ("md", "csv", "html", "png")
#: The scorer the figures and per-group tables use when none is asked for.
PREFERRED_SCORERS = ("paper_f1", "token_f1", "em", "likelihood")
#: Scorers shown with and without the wrong-language answers (the likelihood check has no
#: answer text to be in a language).
ANSWER_SCORERS = ("paper_f1", "token_f1", "em")


class ReportOptions(BaseModel):
    """What to write and how to resample."""

    model_config = ConfigDict(frozen=True)

    formats: tuple[str, ...] = FORMATS
    resamples: int = Field(default=bs.DEFAULT_RESAMPLES, ge=100)
    seed: int = bs.DEFAULT_SEED
    scorer: str | None = None
    """Scorer of the figures, group and per-language difference tables (default: the
    first of paper_f1, token_f1, em present)."""
    labels: list[str] | None = None
    """Each run's name in the report (default: its folder's name)."""
    sources: list[str] | None = None
    """What the report says each run was read from (default: its folder)."""


def parse_formats(spec: str) -> tuple[str, ...]:
    """``md,csv`` -> ("md", "csv"), refusing unknown names."""
    out = tuple(dict.fromkeys(f.strip().lower() for f in spec.split(",") if f.strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ConfigError(f"--format: unknown {', '.join(bad) or 'empty list'}; choose from "
                          f"{','.join(FORMATS)}.")
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def _scorer(stats: ReportStats, wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in stats.scorers:
            raise ConfigError(f"--scorer {wanted!r} is not in these runs; they have "
                              f"{', '.join(stats.scorers)}.")
        return wanted
    return next((s for s in PREFERRED_SCORERS if s in stats.scorers), stats.scorers[0])


def _confusion(runs: list[RunScores], stats: ReportStats, scorer: str,
               options: ReportOptions) -> tuple[ConfusionStats | None, str]:
    """The confusion numbers and the scorer their tables show beside the share."""
    # The report's scorer first, then the F1 scorers; em only when no F1 is present.
    found = [s for s in (scorer, "paper_f1", "token_f1") if s in ANSWER_SCORERS
             and s in stats.scorers] or [s for s in ANSWER_SCORERS if s in stats.scorers]
    scorers = list(dict.fromkeys(found))
    if not scorers:
        return None, scorer
    return compute_confusion(runs, scorers, options.resamples, options.seed,
                             stats=stats), scorers[0]


def _confusion_sections(confusion: ConfusionStats | None, scorer: str,
                        ) -> list[tuple[str, list[Table]]]:
    if confusion is None:
        return []
    sections = []
    for run in confusion.runs:
        averages = confusion_averages_table(confusion, run, scorer)
        if averages is not None:
            sections.append((f"Run {run}: language confusion", [
                averages, *confusion_grouping_tables(confusion, run, scorer),
                *confusion_language_tables(confusion, run, scorer)]))
    if len(confusion.runs) > 1:
        sections.append(("Language confusion across runs",
                         confusion_comparison_tables(confusion)))
    return sections


def _figures(stats: ReportStats, scorer: str, folder: Path,
             confusion: ConfusionStats | None = None) -> list[tuple[Path, str]]:
    from mike_sdk.report.figures import comparison_bars, confusion_bars, heatmap

    made: list[tuple[Path, str]] = []
    bars = comparison_bars(stats, scorer, folder / f"bars_{scorer}.png")
    if bars:
        made.append((bars, f"Average over target languages per run, {scorer}, 95% CI"))
    latin = comparison_bars(stats, scorer, folder / f"bars_script_class_{scorer}.png",
                            grouping="script class")
    if latin:
        made.append((latin, f"Latin vs non-Latin target languages per run, {scorer}, 95% CI"))
    for run in stats.runs:
        cells = sorted({(s.task, s.source) for s in stats.scores if s.run == run})
        for task, source in cells:
            path = folder / f"heatmap_{_slug(run)}_{task}_{source}_{scorer}.png"
            if heatmap(stats, run, task, source, scorer, path):
                made.append((path, f"{run}: {task}, source {source}, {scorer} per language "
                                   "and metric (languages sorted by mean score)"))
    if confusion is not None:
        for run in confusion.runs:
            path = folder / f"wrong_language_{_slug(run)}.png"
            if confusion_bars(confusion, run, path):
                made.append((path, f"{run}: share of decided answers in the wrong language "
                                   "per target language (source vs other language), 95% CI"))
    return made


def build_report(run_dirs: Sequence[str | Path], out: str | Path,
                 options: ReportOptions | None = None) -> list[Path]:
    """Write the report of ``run_dirs`` (the first is the baseline of the differences) into
    ``out``; returns the files written."""
    options = options or ReportOptions()
    if "png" in options.formats:
        from mike_sdk.report.figures import require_matplotlib

        require_matplotlib()  # before anything is written: no half-written report
    runs = load_runs(run_dirs, options.labels)
    sampled_note = shared_items_only(runs)
    stats = compute_stats(runs, options.resamples, options.seed)
    scorer = _scorer(stats, options.scorer)
    confusion, confusion_scorer = _confusion(runs, stats, scorer, options)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    sections: list[tuple[str, list[Table]]] = []
    for run in stats.runs:
        sections.append((f"Run {run}", [averages_table(stats, run),
                                         *grouping_tables(stats, run, scorer),
                                         *language_tables(stats, run)]))
    if len(stats.runs) > 1:
        sections.append((f"Differences against {stats.runs[0]}",
                         difference_tables(stats, scorer)))
    sections += _confusion_sections(confusion, confusion_scorer)
    sources = options.sources or [str(r.path) for r in runs]
    intro = ["Runs: " + "; ".join(f"{r.label} = {source} ({r.describe()})"
                                  for r, source in zip(runs, sources, strict=True)),
             f"Every number is a mean x 100 and names its scorer; intervals are 95% percentile "
             f"bootstrap intervals over items ({options.resamples} resamples, seed "
             f"{options.seed}), resampled within each language for averages over languages.",
             f"Figures, group tables and per-language differences use scorer {scorer}.",
             "Scripts and language families: mike_sdk/data/families.py (families after Glottolog "
             "5.0; scripts as written in the released BMIKE-53 files)."]
    if sampled_note is not None:
        intro.append(sampled_note)
    if confusion is not None:
        intro.append("Answer-language detection: " + "; ".join(
            f"{r.label} = {method_text(r.detection)}" for r in runs) + ".")

    files = csv_files(stats) | (confusion_csv_files(confusion) if confusion else {})

    for name, text in (files.items() if "csv" in options.formats else ()):
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    with tempfile.TemporaryDirectory() as scratch:
        figures: list[tuple[Path, str]] = []
        if "png" in options.formats or "html" in options.formats:
            # HTML alone still needs the images, but only inside the page.
            figures = _figures(stats, scorer, out if "png" in options.formats
                               else Path(scratch), confusion)
            if "png" in options.formats:
                written += [p for p, _ in figures]
        if "md" in options.formats:
            md = ["# BMIKE-53 report", "", *(f"{line}\n" for line in intro)]
            if "png" in options.formats:
                md += [f"![{caption}]({path.name})\n" for path, caption in figures]
            for heading, tables in sections:
                md += [f"## {heading}", "", *(to_markdown(t) for t in tables)]
            (out / "report.md").write_text("\n".join(md), encoding="utf-8")
            written.append(out / "report.md")
        if "html" in options.formats:
            from mike_sdk.report.html import image_html, page, table_html

            html = page("BMIKE-53 report", intro, [
                ("Figures", [image_html(p, c) for p, c in figures]),
                *((h, [table_html(t) for t in tables]) for h, tables in sections)])
            (out / "report.html").write_text(html, encoding="utf-8")
            written.append(out / "report.html")
    return written


__all__ = ["ALL", "FORMATS", "ReportOptions", "build_report", "parse_formats"]
