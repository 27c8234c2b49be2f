"""``mike eval --edit-memory``: the evaluator with edits retrieved instead of given.

Every test edit of a task (in each source language) goes into one in-memory
:class:`~mike_sdk.memory.store.EditMemory`; each question retrieves from all of them,
and the prompt states what was retrieved (at most ``k`` edits at or above the
threshold; none when nothing clears it) instead of the item's own edit, the oracle.
Each row records the retrieval (:class:`RetrievalRecord`); the summary gives, per task
and target language, the top-1 and top-k hit rates of the questions about the edit
and the share of locality questions that got an edit (:class:`RetrievalStats`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mike_sdk.backend import Abilities, GenerationRequest
from mike_sdk.memory.records import MemorySettings, RetrievalRecord, RetrievalStats, Retrieved
from mike_sdk.memory.store import EditMemory
from mike_sdk.records import MetricName, TaskName
from mike_sdk.strategy import PromptCase, PromptStrategy

if TYPE_CHECKING:
    from mike_sdk.data.benchmark import Benchmark
    from mike_sdk.runfolder.files import ResultRow


class MemoryStrategy(PromptStrategy):
    """Wraps a strategy: the case's edit is replaced by what the memory retrieves."""

    def __init__(self, inner: PromptStrategy, settings: MemorySettings,
                 metrics: Iterable[MetricName], limit: int | None) -> None:
        self.inner = inner
        self.name = inner.name
        self.uses_demonstrations = inner.uses_demonstrations
        self.settings = settings
        self.metrics = tuple(metrics)
        self.limit = limit
        self.candidates = max(settings.k, 5)
        self._benchmark: Benchmark | None = None
        self._memories: dict[tuple[TaskName, str], EditMemory] = {}
        self._found: dict[tuple[TaskName, str, str, int, MetricName], list[Retrieved]] = {}
        self._ready: set[tuple[TaskName, str, str]] = set()

    def bind(self, benchmark: Benchmark) -> None:
        self._benchmark = benchmark
        self.inner.bind(benchmark)

    @property
    def files(self) -> dict[str, str]:
        return self.inner.files

    def describe(self) -> dict[str, object]:
        return {**self.inner.describe(), "edit_memory": self.settings.model_dump()}

    def chat_protocol(self) -> dict[str, object] | None:
        return self.inner.chat_protocol()

    def extract(self, request: GenerationRequest, text: str) -> str:
        return self.inner.extract(request, text)

    def render(self, case: PromptCase, abilities: Abilities) -> GenerationRequest:
        assert case.task is not None and case.index is not None, "planned cases carry both"
        found = self._retrieved(case)
        floor = self._memory(case.task, case.edit.language).threshold \
            if self.settings.threshold is None else self.settings.threshold
        applied = [r for r in found[: self.settings.k] if r.score >= floor]
        edits = tuple(r.edit.edit for r in reversed(applied))
        anchor = edits[-1] if edits else case.edit
        return self.inner.render(case.model_copy(update={"edit": anchor, "edits": edits}),
                                 abilities)

    def record(self, task: TaskName, source: str, target: str, index: int,
               metric: MetricName) -> RetrievalRecord | None:
        """The retrieval of one planned question (None if it was not rendered here)."""
        found = self._found.get((task, source, target, index, metric))
        if found is None:
            return None
        floor = self._memory(task, source).threshold if self.settings.threshold is None \
            else self.settings.threshold
        applied = [r for r in found[: self.settings.k] if r.score >= floor]
        ranks = [n for n, r in enumerate(found, 1) if r.edit.id == str(index)]
        return RetrievalRecord(edit_ids=tuple(r.edit.id for r in applied),
                               scores=tuple(round(r.score, 4) for r in applied),
                               own_rank=ranks[0] if ranks else None,
                               own_applied=any(r.edit.id == str(index) for r in applied))

    def _memory(self, task: TaskName, source: str) -> EditMemory:
        """Every test edit of ``task`` stated in ``source``, in one memory."""
        key = (task, source)
        if key not in self._memories:
            assert self._benchmark is not None, "the evaluator binds its benchmark first"
            other = "de" if source == "en" else source  # en's records ride in every file
            items = self._benchmark.items(task, other, source).items
            memory = EditMemory(":memory:", embedder=self.settings.embedder,
                                threshold=self.settings.threshold)
            memory.add_many([{"id": str(i.index), "question": i.source.src,
                              "answer": i.source.alt, "language": source} for i in items])
            self._memories[key] = memory
        return self._memories[key]

    def _retrieved(self, case: PromptCase) -> list[Retrieved]:
        assert case.task is not None and case.index is not None
        source, target = case.edit.language, case.question.language
        group = (case.task, source, target)
        if group not in self._ready:  # one batch for the whole language pair
            assert self._benchmark is not None
            items = self._benchmark.items(case.task, target, source, limit=self.limit).items
            asked = [(i.index, m, i.target.question(m)) for i in items for m in self.metrics]
            found = self._memory(case.task, source).search_many(
                [text for _, _, text in asked], k=self.candidates, threshold=-2.0)
            for (index, metric, _), hits in zip(asked, found, strict=True):
                self._found[(*group, index, metric)] = hits
            self._ready.add(group)
        key = (*group, case.index, case.question.metric)
        if key not in self._found:  # a question outside the batch (another limit)
            self._found[key] = self._memory(case.task, source).search(
                case.question.text, k=self.candidates, threshold=-2.0)
        return self._found[key]


def retrieval_stats(rows: Iterable[ResultRow], k: int) -> dict[str, dict[str, RetrievalStats]]:
    """Per task and target language, the hit rates of the rows' retrievals."""
    about: dict[tuple[str, str], list[RetrievalRecord]] = defaultdict(list)
    local: dict[tuple[str, str], list[RetrievalRecord]] = defaultdict(list)
    for row in rows:
        if row.retrieval is None:
            continue
        (local if row.metric == "locality" else about)[(row.task, row.target_lang)].append(
            row.retrieval)
    out: dict[str, dict[str, RetrievalStats]] = defaultdict(dict)
    for key in sorted(set(about) | set(local)):
        mine, other = about.get(key, []), local.get(key, [])
        n = len(mine) or 1
        out[key[0]][key[1]] = RetrievalStats(
            questions=len(mine),
            top1=sum(r.own_rank == 1 for r in mine) / n,
            top_k=sum(r.own_rank is not None and r.own_rank <= k for r in mine) / n,
            k_reported=k, own_applied=sum(r.own_applied for r in mine) / n,
            locality_questions=len(other),
            locality_applied=sum(bool(r.edit_ids) for r in other) / len(other) if other
            else None)
    return dict(out)

