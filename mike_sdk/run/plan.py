"""Expanding a configuration into work items, in a deterministic order.

Order: task, then source language, then target language, then item position,
then metric, exactly as configured. Items are rendered lazily, one language file
at a time, so planning the whole benchmark stays within a few hundred MB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mike_sdk.backend import Abilities, GenerationRequest
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.records import Item, MetricName
from mike_sdk.run.config import EvalConfig
from mike_sdk.strategy import PromptCase, PromptStrategy


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One question to one model: an item, a metric and the rendered request."""

    id: str
    item: Item
    metric: MetricName
    request: GenerationRequest
    gold: str = field(init=False, compare=False)
    """The expected answer, in the target language (read several times a row: kept)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "gold", self.item.target.answer(self.metric))


def work_id(item: Item, metric: MetricName) -> str:
    """Stable id of a work item within a run, e.g. ``zsre/en>de/17/locality``."""
    return f"{item.task}/{item.source_lang}>{item.target_lang}/{item.index}/{metric}"


@dataclass
class Planner:
    """Iterates the work items of a configuration and records what it skipped and read."""

    benchmark: Benchmark
    config: EvalConfig
    strategy: PromptStrategy
    abilities: Abilities
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    """Items that cannot be scored, per task and ``source>target`` pair (``"en>de"``)."""
    files: dict[str, str] = field(default_factory=dict)
    """sha256 of every data file read, by path relative to the data root."""

    def __iter__(self) -> Iterator[WorkItem]:
        cfg = self.config
        for task in cfg.tasks:
            demos = self.benchmark.demonstrations(task) if self.strategy.uses_demonstrations \
                else ()
            if demos:
                self.files.update(self.benchmark.demonstration_files(task))
            for source, lang in cfg.pairs():
                # Only the first ``limit`` positions are validated: at --limit 5 the
                # rest of each file would cost almost all of a cached re-run.
                items = self.benchmark.items(task, lang, source, limit=cfg.limit)
                self.files.update(items.files)
                self.skipped.setdefault(task, {})[f"{source}>{lang}"] = items.skipped
                for item in items.items:
                    edit = item.edit
                    for metric in cfg.metrics:
                        question = item.question(metric)
                        case = PromptCase.model_construct(
                            edit=edit, question=question, demonstrations=demos, task=task,
                            index=item.index)
                        request = self.strategy.render(case, self.abilities)
                        yield WorkItem(work_id(item, metric), item, metric, request)
