"""Expanding a configuration into work items, in a deterministic order.

Order: task, then source language, then target language, then item position,
then metric, exactly as configured. Items are rendered lazily, one language file
at a time, so planning the whole benchmark stays within a few hundred MB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from mike_sdk.backend import Abilities, GenerationRequest
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.records import Item, MetricName
from mike_sdk.run.config import EvalConfig
from mike_sdk.runfolder.files import SampleRecord
from mike_sdk.sampling.positions import positions, sample_size
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


def check_data_files(recorded: Mapping[str, str], now: Mapping[str, str]) -> None:
    """Refuse data files whose sha256 differs from what a run folder recorded."""
    for path, digest in now.items():
        before = recorded.get(path)
        if before is not None and before != digest:
            raise ConfigError(
                f"Data file {path} changed since this run folder was started (sha256 "
                f"{before[:12]}... then, {digest[:12]}... now): its rows would mix two "
                "versions of the data. Start a new run with another --run-dir, or restore "
                "the file.")


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
    recorded: Mapping[str, str] = field(default_factory=dict)
    """sha256 of the data files as the run folder recorded them: a file that differs
    now is refused (its rows would mix two versions of the data)."""
    available: dict[str, int] = field(default_factory=dict)
    """Item positions in each task's test files read (within ``limit``)."""
    sizes: Mapping[str, int] | None = None
    """Items per task to take from the seeded permutation (the rounds of ``target_ci``);
    tasks not named take ``config.sample``."""
    on_read: Callable[[dict[str, str]], None] | None = None
    """Called with the hashes of files read for the first time (the run records them at
    once, so that even a crashed session leaves them behind)."""

    def _read(self, files: Mapping[str, str]) -> None:
        new = {path: digest for path, digest in files.items() if path not in self.files}
        if not new:
            return
        check_data_files(self.recorded, new)
        self.files.update(new)
        if self.on_read is not None:
            self.on_read(new)

    def sample_record(self) -> SampleRecord | None:
        """What a sampled configuration took from each task read (None: not sampled)."""
        cfg = self.config
        if not cfg.sampled:
            return None
        return SampleRecord(seed=cfg.seed, target_ci=cfg.target_ci, available=self.available,
                            items={t: min(n, sample_size(t, cfg.sample, self.sizes) or n)
                                   for t, n in self.available.items()})

    def __iter__(self) -> Iterator[WorkItem]:
        cfg = self.config
        for task in cfg.tasks:
            demos = self.benchmark.demonstrations(task) if self.strategy.uses_demonstrations \
                else ()
            if demos:
                self._read(self.benchmark.demonstration_files(task))
            for source, lang in cfg.pairs():
                # Only the first ``limit`` positions are validated: at --limit 5 the
                # rest of each file would cost almost all of a cached re-run.
                items = self.benchmark.items(task, lang, source, limit=cfg.limit)
                self._read(items.files)
                planned: Sequence[int] = range(len(items.items) + items.skipped)
                self.available[task] = len(planned)
                chosen = items.items
                if cfg.sampled:  # the first N of the seeded permutation, in file order
                    keep = positions(task, len(planned), sample_size(
                        task, cfg.sample, self.sizes), cfg.seed)
                    chosen = [i for i in chosen if i.index in keep]
                    planned = sorted(keep)
                if cfg.shard is not None:  # this shard's positions only, skips included
                    mine, of = cfg.shard
                    chosen = [i for i in chosen if i.index % of == mine - 1]
                    planned = [p for p in planned if p % of == mine - 1]
                skipped = len(planned) - len(chosen)
                self.skipped.setdefault(task, {})[f"{source}>{lang}"] = skipped
                for item in chosen:
                    edit = item.edit
                    for metric in cfg.metrics:
                        question = item.question(metric)
                        # Validated: pydantic-core checks the instances it is given
                        # faster than model_construct copies them (14 us against 28).
                        case = PromptCase(edit=edit, question=question,
                                          demonstrations=demos, task=task, index=item.index)
                        request = self.strategy.render(case, self.abilities)
                        yield WorkItem(work_id(item, metric), item, metric, request)
