"""Expanding a configuration into work items, in a deterministic order.

Order: task, then source language, then target language, then item position,
then metric, exactly as configured. Items are rendered lazily, one language file
at a time, so planning the whole benchmark stays within a few hundred MB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .backend import Abilities, GenerationRequest
from .config import EvalConfig
from .data import Benchmark
from .records import Item, MetricName
from .strategy import PromptCase, PromptStrategy


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One question to one model: an item, a metric and the rendered request."""

    id: str
    item: Item
    metric: MetricName
    request: GenerationRequest

    @property
    def gold(self) -> str:
        """The expected answer, in the target language."""
        return self.item.target.answer(self.metric)


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
                items = self.benchmark.items(task, lang, source)
                self.files.update(items.files)
                limit = cfg.limit
                chosen = [i for i in items.items if limit is None or i.index < limit]
                positions = len(items.items) + items.skipped
                if limit is not None:
                    positions = min(limit, positions)
                self.skipped.setdefault(task, {})[f"{source}>{lang}"] = positions - len(chosen)
                for item in chosen:
                    edit = item.edit
                    for metric in cfg.metrics:
                        question = item.question(metric)
                        case = PromptCase.model_construct(
                            edit=edit, question=question, demonstrations=demos, task=task,
                            index=item.index)
                        request = self.strategy.render(case, self.abilities)
                        yield WorkItem(work_id(item, metric), item, metric, request)
