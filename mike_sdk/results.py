"""Result rows and their aggregation into a run summary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from .backend import ChatMessage
from .confusion import LABELS, AnswerLanguage
from .records import MetricName, TaskName

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


class LikelihoodCheck(BaseModel):
    """The new-vs-old check: is the new answer more probable than ``loc_ans``?"""

    model_config = ConfigDict(frozen=True)

    new_logprob: float
    """Mean per-token log-probability of the new (gold) answer."""
    old_logprob: float
    """Mean per-token log-probability of ``loc_ans`` (the old answer on CounterFact)."""

    @property
    def new_more_probable(self) -> bool:
        """The paper's success criterion (lower perplexity = higher mean log-probability)."""
        return self.new_logprob > self.old_logprob


class ResultRow(BaseModel):
    """One scored answer, with everything needed to audit it."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Work-item id: ``task/source>target/index/metric``."""
    task: TaskName
    """Benchmark task."""
    index: int
    """Item position in the test file."""
    case_id: int | str | None
    """The item's case id."""
    source_lang: str
    """Language of the edit."""
    target_lang: str
    """Language of the question and gold answer."""
    metric: MetricName
    """What the question probes."""
    prompt: str | None
    """The completion prompt sent, if any."""
    messages: tuple[ChatMessage, ...] | None
    """The chat messages sent, if any."""
    cache_key: str
    """Response-cache key of the request."""
    output: str
    """The model's raw text."""
    answer: str
    """The answer extracted by the strategy."""
    gold: str
    """The expected answer."""
    scores: dict[str, float]
    """Scores by scorer name (see :data:`mike_sdk.scoring.SCORERS`)."""
    likelihood: LikelihoodCheck | None = None
    """The likelihood check, where run."""
    cached: bool
    """Whether the answer came from the cache (no backend call in this run)."""
    input_tokens: int | None = None
    """Prompt tokens reported by the backend."""
    output_tokens: int | None = None
    """Generated tokens reported by the backend."""
    cached_input_tokens: int | None = None
    """Prompt tokens the provider served from its prompt cache."""
    cost_usd: float | None = None
    """What the call cost (or would have, for a cached answer); None when the price is unknown."""
    finish_reason: str
    """Why generation ended."""
    error: str | None = None
    """Why the request was refused (its answer is empty and its scores 0), or None."""
    answer_language: AnswerLanguage | None = None
    """The answer's language relative to source and target (None in rows of older runs)."""


class Aggregator:
    """Running means per task x source x target language x metric."""

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str, str, str], dict[str, float]] = defaultdict(
            lambda: defaultdict(float))
        self.rows = 0
        self.cached = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_input_tokens = 0
        self.errors = 0
        self._cost = 0.0
        self._cost_known = True

    def add(self, row: dict[str, Any]) -> None:
        """Count one result row (as a dict, the way it is stored)."""
        sums = self._sums[(row["task"], row["source_lang"], row["target_lang"], row["metric"])]
        sums["n"] += 1
        for name, value in row["scores"].items():
            sums[name] += value
        language = row.get("answer_language")
        if language is not None:
            label = language["label"]
            sums[f"lang_{label}"] += 1
            if label in KEPT_LABELS:  # scores without the wrong-language answers
                sums["kept_n"] += 1
                for name, value in row["scores"].items():
                    sums[f"kept_{name}"] += value
        check = row.get("likelihood")
        if check is not None:
            sums["likelihood_n"] += 1
            sums["likelihood"] += check["new_logprob"] > check["old_logprob"]
        self.rows += 1
        if row["cached"]:
            self.cached += 1
        elif row.get("error"):
            self.errors += 1
        else:
            self.input_tokens += row.get("input_tokens") or 0
            self.output_tokens += row.get("output_tokens") or 0
            self.cached_input_tokens += row.get("cached_input_tokens") or 0
            cost = row.get("cost_usd")
            if cost is None:
                self._cost_known = False
            else:
                self._cost += cost

    @property
    def cost_usd(self) -> float | None:
        """USD of the calls behind the rows (cache hits are free), None if any price is unknown."""
        return round(self._cost, 6) if self._cost_known else None

    def table(self) -> list[dict[str, Any]]:
        """One entry per group: ``n`` and each scorer's mean x 100 (the paper's scale)."""
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
