"""Expanding a configuration into work items, in a deterministic order.

Order: task, then source language, then target language, then item position,
then metric, exactly as configured. Items are rendered lazily, one language file
at a time, so planning the whole benchmark stays within a few hundred MB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from mike_sdk.backend import Abilities, GenerationRequest
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.records import Demonstration, Item, MetricName, TaskName
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


class Block(NamedTuple):
    """A part of the plan read from one test file: a task and a language pair."""

    task: TaskName
    source: str
    target: str

    @property
    def pair(self) -> str:
        """``source>target``, as the plan's ``skipped`` counts are keyed."""
        return f"{self.source}>{self.target}"


@dataclass(frozen=True)
class BlockPlan:
    """What planning one block found: items skipped, positions available, files read."""

    skipped: int
    available: int
    files: Mapping[str, str] = field(default_factory=dict)


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
    _demos: dict[str, tuple[Demonstration, ...]] = field(default_factory=dict, repr=False)

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

    def blocks(self) -> list[Block]:
        """The plan's blocks, in order: one per task and language pair."""
        return [Block(task, source, lang) for task in self.config.tasks
                for source, lang in self.config.pairs()]

    def __iter__(self) -> Iterator[WorkItem]:
        for block in self.blocks():
            yield from self.block(block)

    def block(self, block: Block) -> Iterator[WorkItem]:
        """The work items of one block, in order (reading its test file)."""
        cfg = self.config
        task, source, lang = block
        demos = self._demonstrations(task)
        # Only the first ``limit`` positions are validated: at --limit 5 the rest of
        # each file would cost almost all of a cached re-run.
        items = self.benchmark.items(task, lang, source, limit=cfg.limit)
        self._read(items.files)
        planned: Sequence[int] = range(len(items.items) + items.skipped)
        available = len(planned)
        chosen = items.items
        if cfg.sampled:  # the first N of the seeded permutation, in file order
            keep = positions(task, available, sample_size(task, cfg.sample, self.sizes),
                             cfg.seed)
            chosen = [i for i in chosen if i.index in keep]
            planned = sorted(keep)
        if cfg.shard is not None:  # this shard's positions only, skips included
            mine, of = cfg.shard
            chosen = [i for i in chosen if i.index % of == mine - 1]
            planned = [p for p in planned if p % of == mine - 1]
        self.absorb(block, BlockPlan(skipped=len(planned) - len(chosen), available=available))
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

    def absorb(self, block: Block, plan: BlockPlan) -> None:
        """Record what planning ``block`` found (here, or in a helper process)."""
        self._read(plan.files)
        self.available[block.task] = plan.available
        self.skipped.setdefault(block.task, {})[block.pair] = plan.skipped

    def record(self, block: Block) -> BlockPlan:
        """What planning ``block`` found, for the process that writes the run."""
        return BlockPlan(skipped=self.skipped[block.task][block.pair],
                         available=self.available[block.task], files=dict(self.files))

    def in_order(self) -> None:
        """Put :attr:`skipped` in plan order (helpers report blocks as they finish)."""
        order: dict[tuple[str, str], int] = {(b.task, b.pair): n
                                             for n, b in enumerate(self.blocks())}
        self.skipped = {task: dict(sorted(pairs.items(), key=lambda kv: order[(task, kv[0])]))
                        for task, pairs in self.skipped.items()}

    def _demonstrations(self, task: TaskName) -> tuple[Demonstration, ...]:
        if not self.strategy.uses_demonstrations:
            return ()
        demos = self._demos.get(task)
        if demos is None:  # read and hashed once per task, not once per block
            demos = self._demos[task] = self.benchmark.demonstrations(task)
            if demos:
                self._read(self.benchmark.demonstration_files(task))
        return demos
