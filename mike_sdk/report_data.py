"""Item-level scores of a run folder, the input of every report table and figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError
from .rundir import MANIFEST, RESULTS, SUMMARY, iter_rows

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

    def __init__(self, path: Path, label: str, summary: dict[str, Any],
                 manifest: dict[str, Any]) -> None:
        self.path = path
        self.label = label
        self.summary = summary
        self.manifest = manifest
        self.scores: dict[Cell, dict[str, dict[str, float]]] = {}
        self.labels: dict[Cell, dict[str, str]] = {}
        """Per cell, each answer's language label (``target``, ``source``, ...) by item id;
        rows written before answers were labelled have none."""

    def add(self, row: dict[str, Any]) -> None:
        """Record one ``results.jsonl`` row (a later row with the same id replaces it)."""
        cell = Cell(row["task"], row["metric"], row["source_lang"], row["target_lang"])
        by_scorer = self.scores.setdefault(cell, {})
        for name, value in row["scores"].items():
            by_scorer.setdefault(name, {})[row["id"]] = float(value)
        language = row.get("answer_language")
        if language is not None:
            self.labels.setdefault(cell, {})[row["id"]] = language["label"]
        check = row.get("likelihood")
        if check is not None:
            # The paper's success criterion, as in results.LikelihoodCheck.
            won = float(check["new_logprob"] > check["old_logprob"])
            by_scorer.setdefault("likelihood", {})[row["id"]] = won

    @property
    def scorers(self) -> list[str]:
        """Scorers present in this run, known ones first."""
        found = {s for cell in self.scores.values() for s in cell}
        return [s for s in SCORERS if s in found] + sorted(found - set(SCORERS))

    @property
    def detection(self) -> str | None:
        """How answer languages were detected (``script+lingua``, ``script-only``), if known."""
        found = self.summary.get("language_detection") or {}
        method = found.get("method") if isinstance(found, dict) else None
        return str(method) if method else None

    def describe(self) -> str:
        """One line: backend, model and strategy."""
        backend = self.summary.get("backend") or self.manifest.get("backend") or {}
        strategy = self.summary.get("strategy") or self.manifest.get("strategy") or {}
        name = strategy.get("name") if isinstance(strategy, dict) else strategy
        return f"{backend.get('kind')} {backend.get('model')}, strategy {name}"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def load_run(path: str | Path, label: str | None = None) -> RunScores:
    """Read a run folder's ``results.jsonl`` (and summary/manifest for labels)."""
    path = Path(path)
    if not (path / RESULTS).exists():
        raise ConfigError(f"No {RESULTS} in {path}: is it a run folder? Run `mike eval` first.")
    run = RunScores(path, label or path.name, _read_json(path / SUMMARY),
                    _read_json(path / MANIFEST))
    for row in iter_rows(path / RESULTS):
        run.add(row)
    if not run.scores:
        raise ConfigError(f"{path / RESULTS} has no complete rows yet.")
    return run


def load_runs(paths: Sequence[str | Path], labels: list[str] | None = None) -> list[RunScores]:
    """Several runs, with unique labels (folder names, numbered where they clash)."""
    if labels and len(labels) != len(paths):
        raise ConfigError(f"--labels gave {len(labels)} names for {len(paths)} run folders.")
    names = labels or [Path(p).name or str(p) for p in paths]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return [load_run(p, n) for p, n in zip(paths, unique, strict=True)]
