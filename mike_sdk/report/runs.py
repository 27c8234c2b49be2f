"""Item-level scores of a run folder, the input of every report table and figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.files import MANIFEST, SUMMARY, Manifest, ResultRow, Summary
from mike_sdk.runfolder.rundir import iter_result_rows, read_manifest, read_summary, results_file

#: Scorers in the order tables show them (``likelihood`` is the new-vs-old check).
SCORERS = ("em", "paper_f1", "token_f1", "likelihood")


class Cell(NamedTuple):
    """One task x metric x source x target language group of items."""

    task: str
    metric: str
    source: str
    target: str


class RunScores:
    """Per cell and scorer, each item's score (0..1) keyed by its work-item id."""

    def __init__(self, path: Path, label: str, summary: Summary | None,
                 manifest: Manifest | None) -> None:
        self.path = path
        self.label = label
        self.summary = summary
        """The run's ``summary.json``, if it was written."""
        self.manifest = manifest
        """The run's ``manifest.json``, if there is one."""
        self.scores: dict[Cell, dict[str, dict[str, float]]] = {}
        self.labels: dict[Cell, dict[str, str]] = {}
        """Per cell, each answer's language label (``target``, ``source``, ...) by item id;
        rows written before answers were labelled have none."""
        self.positions: dict[str, int] = {}
        """Each item id's position in its task: the same position in every target language,
        so averages over languages resample positions jointly."""

    def add(self, row: ResultRow) -> None:
        """Record one ``results.jsonl`` row (a later row with the same id replaces it)."""
        cell = Cell(row.task, row.metric, row.source_lang, row.target_lang)
        by_scorer = self.scores.setdefault(cell, {})
        self.positions[row.id] = row.index
        for name, value in row.scores.items():
            by_scorer.setdefault(name, {})[row.id] = value
        if row.answer_language is not None:
            self.labels.setdefault(cell, {})[row.id] = row.answer_language.label
        if row.likelihood is not None:
            won = float(row.likelihood.new_more_probable)
            by_scorer.setdefault("likelihood", {})[row.id] = won

    @property
    def scorers(self) -> list[str]:
        """Scorers present in this run, known ones first."""
        found = {s for cell in self.scores.values() for s in cell}
        return [s for s in SCORERS if s in found] + sorted(found - set(SCORERS))

    @property
    def detection(self) -> str | None:
        """How answer languages were detected (``script+lingua``, ``script-only``), if known."""
        found = self.summary.language_detection if self.summary is not None else None
        return found.method if found is not None else None

    def describe(self) -> str:
        """One line: backend, model and strategy."""
        described = self.summary or self.manifest
        if described is None:
            return "unknown backend (no summary.json or manifest.json)"
        backend = described.backend
        return f"{backend.kind} {backend.model}, strategy {described.strategy.get('name')}"


def load_run(path: str | Path, label: str | None = None) -> RunScores:
    """Read a run folder's ``results.jsonl`` (and summary/manifest for labels).

    Raises:
        ConfigError: no rows, or a file that does not read (names file and line).
    """
    path = Path(path)
    results = results_file(path)
    if not results.exists():
        raise ConfigError(f"No {results.name} in {path}: is it a run folder? Run `mike eval` "
                          "first.")
    # The manifest first: a newer format is refused before its rows are misread.
    manifest = read_manifest(path) if (path / MANIFEST).exists() else None
    summary = read_summary(path) if (path / SUMMARY).exists() else None
    run = RunScores(path, label or path.name, summary, manifest)
    for row in iter_result_rows(results):
        run.add(row)
    if not run.scores:
        raise ConfigError(f"{results} has no complete rows yet.")
    return run


def unique_labels(paths: Sequence[str | Path], labels: list[str] | None = None) -> list[str]:
    """A label per run: ``labels``, else folder names, numbered where they clash."""
    if labels and len(labels) != len(paths):
        raise ConfigError(f"--labels gave {len(labels)} names for {len(paths)} run folders.")
    names = labels or [Path(p).name or str(p) for p in paths]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


def load_runs(paths: Sequence[str | Path], labels: list[str] | None = None) -> list[RunScores]:
    """Several runs, with unique labels (folder names, numbered where they clash)."""
    unique = unique_labels(paths, labels)
    return [load_run(p, n) for p, n in zip(paths, unique, strict=True)]
