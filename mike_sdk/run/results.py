"""The aggregation of result rows (:class:`~mike_sdk.runfolder.files.ResultRow`) into a run
summary's per-group results."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from mike_sdk.runfolder.files import ResultRow
from mike_sdk.scoring.confusion import LABELS

#: Answers that count as in the wrong language: in the edit's language or a third one.
WRONG_LABELS: tuple[str, ...] = ("source", "other")
#: Answers the in-language scores keep: in the target language, or undecidable (neutral).
KEPT_LABELS: tuple[str, ...] = ("target", "neutral")


def decided(counts: Mapping[str, int]) -> int:
    """Answers whose language was decided: target + source + other (neutral counts neither way)."""
    return sum(counts.get(label, 0) for label in LABELS if label != "neutral")


def wrong_language_share(counts: Mapping[str, int]) -> float | None:
    """100 x (source + other) / (target + source + other); None when every answer is neutral."""
    total = decided(counts)
    return 100 * sum(counts.get(label, 0) for label in WRONG_LABELS) / total if total else None


def _group_sums() -> defaultdict[str, float]:
    return defaultdict(float)


class Aggregator:
    """Running means per task x source x target language x metric."""

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str, str, str], dict[str, float]] = defaultdict(
            _group_sums)  # a function, not a lambda: a helper process sends its aggregator
        self.rows = 0
        self.cached = 0
        self.out_of_reasoning_budget = 0
        self.errors = 0

    def add(self, row: ResultRow) -> None:
        """Count one result row."""
        scores = row.scores
        sums = self._sums[(row.task, row.source_lang, row.target_lang, row.metric)]
        sums["n"] += 1
        for name, value in scores.items():
            sums[name] += value
        language = row.answer_language
        if language is not None:
            label = language.label
            sums[f"lang_{label}"] += 1
            if label in KEPT_LABELS:  # scores without the wrong-language answers
                sums["kept_n"] += 1
                for name, value in scores.items():
                    sums[f"kept_{name}"] += value
        check = row.likelihood
        if check is not None:
            sums["likelihood_n"] += 1
            sums["likelihood"] += check.new_logprob > check.old_logprob
        self.rows += 1
        if row.finish_reason == "reasoning":
            self.out_of_reasoning_budget += 1
        if row.cached:
            self.cached += 1
        elif row.error:
            self.errors += 1

    def merge(self, other: Aggregator) -> None:
        """Count the rows another aggregator counted (a helper process's)."""
        for group, sums in other._sums.items():
            mine = self._sums[group]
            for name, value in sums.items():
                mine[name] += value
        self.rows += other.rows
        self.cached += other.cached
        self.out_of_reasoning_budget += other.out_of_reasoning_budget
        self.errors += other.errors

    def table(self) -> list[dict[str, Any]]:
        """One entry per group: ``n`` and each scorer's mean x 100 (the paper's scale), the
        JSON form of :class:`~mike_sdk.runfolder.files.GroupResult` (what does not apply is
        left out)."""
        out = []
        for (task, source, target, metric), sums in sorted(self._sums.items()):
            n = sums["n"]
            entry: dict[str, Any] = {"task": task, "source_lang": source,
                                     "target_lang": target, "metric": metric, "n": int(n)}
            for name, total in sums.items():
                if name in ("n", "likelihood", "likelihood_n", "kept_n") \
                        or name.startswith(("lang_", "kept_")):
                    continue
                entry[name] = round(100 * total / n, 4)
            entry.update(_language_entry(sums))
            if sums.get("likelihood_n"):
                entry["likelihood"] = round(100 * sums["likelihood"] / sums["likelihood_n"], 4)
                entry["likelihood_n"] = int(sums["likelihood_n"])
            out.append(entry)
        return out


def _language_entry(sums: dict[str, float]) -> dict[str, Any]:
    """Answer-language counts, the wrong-language share and the scores without those answers.

    ``wrong_language`` is 100 x (source + other) / (target + source + other): neutral
    answers count neither way; None when every answer is neutral. ``in_language`` holds
    the mean scores x 100 over the answers labelled target or neutral.
    """
    counts: dict[str, int] = {label: int(sums.get(f"lang_{label}", 0)) for label in LABELS}
    if not any(counts.values()):
        return {}  # rows written before answers were labelled
    share = wrong_language_share(counts)
    kept = sums.get("kept_n", 0)
    scores = {name[5:]: round(100 * total / kept, 4) for name, total in sums.items()
              if name.startswith("kept_") and name != "kept_n"} if kept else {}
    return {"answer_language": counts,
            "wrong_language": None if share is None else round(share, 4),
            "in_language": {"n": int(kept), **scores}}
