"""The "retrieved" strategy: per-item demonstrations from the task's English training pool.

As in the method's first version, the ``k`` training facts nearest to the edit are
turned into demonstrations: either the precomputed ``corpus_idx`` neighbours
(all-MiniLM-L6-v2, 64 per test item) or neighbours computed here with a pluggable
:class:`~mike_sdk.prompts.embeddings.Embedder`. A retrieved fact becomes one block
in the paper's format (``<fact>\\n<question> <answer>\\n\\n``), English throughout
because the pools are English-only; see ``docs/strategies.md``.

It reads the benchmark through ``data_dir`` (a strategy option), or through
:meth:`RetrievedDemonstrations.bind` when an evaluator hands it its Benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError, DataError
from mike_sdk.records import DemoType, MetricName, TaskName
from mike_sdk.strategy import STRATEGIES, PromptCase

from .embeddings import MINILM, Embedder, EmbeddingCache, get_embedder
from .mike import DemonstrationStrategy

if TYPE_CHECKING:
    from .embeddings import Vectors

CORPUS_IDX_K = 64

#: Which demonstration a retrieved fact becomes, by the metric the question probes.
#: The pools hold no portability questions, so portability gets paraphrases (update).
METRIC_TYPES: dict[MetricName, DemoType] = {
    "reliability": "copy", "generality": "update", "locality": "retain",
    "portability": "update",
}
#: IKE's mix (1 copy : 3 update : 4 retain), cycled over the neighbours nearest first.
MIXED_TYPES: tuple[DemoType, ...] = ("copy", "update", "update", "update",
                                     "retain", "retain", "retain", "retain")


class PoolFact(BaseModel):
    """One English training-pool fact (the pools carry no portability questions)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    case_id: int | str
    """Id in the pool; ``corpus_idx`` lists these."""
    src: str
    """The fact's question (or prompt, on CounterFact and WikiFactDiff)."""
    rephrase: str
    """A paraphrase of ``src``."""
    alt: str
    """The fact's (new) answer."""
    loc: str
    """An unrelated question."""
    loc_ans: str
    """Its answer."""

    @property
    def statement(self) -> str:
        """The fact as the paper states a new fact: question, space, answer."""
        return f"{self.src} {self.alt}"

    def demonstration(self, kind: DemoType) -> str:
        """The demonstration text of ``kind``: question, space, answer (as in the manual pools)."""
        if kind == "copy":
            return self.statement
        if kind == "retain":
            return f"{self.loc} {self.loc_ans}"
        return f"{self.rephrase} {self.alt}"  # update (and portability: see METRIC_TYPES)


class RetrievalOptions(BaseModel):
    """Options of the "retrieved" strategy (``--strategy-option key=value``)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    k: int = Field(default=8, ge=1)
    """Demonstrations per prompt (at most 64 from ``corpus_idx``)."""
    source: Literal["corpus_idx", "embeddings"] = "corpus_idx"
    """Precomputed neighbours (the released files) or neighbours computed with ``embedder``."""
    embedder: str = MINILM
    """Registered embedder name for ``source=embeddings``."""
    types: Literal["metric", "mixed"] = "metric"
    """Demonstration kind: by the question's metric, or IKE's copy/update/retain mix."""
    data_dir: str | None = None
    """BMIKE-53 folder (default: ``$MIKE_DATA_DIR``, then the user cache)."""
    cache_dir: str | None = None
    """Folder of cached pool embeddings (default: ``<mike cache>/embeddings``)."""


@STRATEGIES.register("retrieved")
class RetrievedDemonstrations(DemonstrationStrategy):
    """k nearest English training-pool facts as demonstrations (the method's first version)."""

    uses_demonstrations = False

    def __init__(self, *, embedder_instance: Embedder | None = None, **options: Any) -> None:
        super().__init__()
        try:
            self.options = RetrievalOptions(**options)
        except ValidationError as exc:
            raise ConfigError(f"retrieved: bad options: {exc.errors()[0]['msg']} "
                              f"({exc.errors()[0]['loc']}).") from None
        if self.options.source == "corpus_idx" and self.options.k > CORPUS_IDX_K:
            raise ConfigError(f"retrieved: corpus_idx holds {CORPUS_IDX_K} neighbours per item; "
                              f"k={self.options.k} needs source=embeddings.")
        self._embedder = embedder_instance
        self._benchmark: Benchmark | None = None
        self.cache = EmbeddingCache(self.options.cache_dir)
        self._pools: dict[TaskName, tuple[list[PoolFact], dict[int | str, int]]] = {}
        self._corpus: dict[TaskName, list[list[int | str]]] = {}
        self._vectors: dict[TaskName, Vectors] = {}
        self._neighbours: dict[tuple[TaskName, int, str], tuple[int, ...]] = {}
        self._files: dict[str, str] = {}

    def bind(self, benchmark: Benchmark) -> None:
        """Read the pools from ``benchmark`` (an evaluator calls this when it has one)."""
        self._benchmark = benchmark

    @property
    def files(self) -> dict[str, str]:
        """sha256 of the pools and ``corpus_idx`` files read, by path relative to the data
        root (the evaluator adds them to the run manifest's ``data_files``)."""
        return dict(self._files)

    @property
    def benchmark(self) -> Benchmark:
        """The benchmark the pools come from (``data_dir`` unless bound)."""
        if self._benchmark is None:
            self._benchmark = Benchmark(self.options.data_dir)
        return self._benchmark

    @property
    def embedder(self) -> Embedder:
        """The embedder of ``source=embeddings`` (built on first use)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.options.embedder)
        return self._embedder

    def pool(self, task: TaskName) -> list[PoolFact]:
        """The task's English training pool, in file order."""
        return self._pool(task)[0]

    def _pool(self, task: TaskName) -> tuple[list[PoolFact], dict[int | str, int]]:
        if task not in self._pools:
            records, digest = self.benchmark.training_pool(task)
            self._files[self.benchmark.relative(self.benchmark.training_pool_file(task))] = digest
            try:
                facts = [PoolFact.model_validate(r) for r in records]
            except ValidationError as exc:
                raise DataError(f"{self.benchmark.training_pool_file(task)}: a fact is "
                                f"malformed ({exc.errors()[0]['msg']}).") from None
            self._pools[task] = (facts, {f.case_id: i for i, f in enumerate(facts)})
        return self._pools[task]

    def retrieve(self, case: PromptCase) -> list[PoolFact]:
        """The ``k`` pool facts nearest to the case's edit, nearest first."""
        if case.task is None or case.index is None:
            raise ConfigError("retrieved: the case must carry its task and index "
                              "(cases built from BMIKE-53 items do).")
        key = (case.task, case.index, case.edit.statement)
        if key not in self._neighbours:
            if self.options.source == "corpus_idx":
                found = self._from_corpus_idx(case.task, case.index)
            else:
                found = self._from_embeddings(case.task, case.edit.statement)
            self._neighbours[key] = found
        facts = self.pool(case.task)
        return [facts[i] for i in self._neighbours[key]]

    def _from_corpus_idx(self, task: TaskName, index: int) -> tuple[int, ...]:
        if task not in self._corpus:
            rows, digest = self.benchmark.corpus_idx(task)
            self._files[self.benchmark.relative(self.benchmark.corpus_idx_file(task))] = digest
            self._check_alignment(task, rows)
            self._corpus[task] = [list(r["corpus_ids"]) for r in rows]
        positions = self._pool(task)[1]
        ids = self._corpus[task][index][: self.options.k]
        missing = [i for i in ids if i not in positions]
        if missing:
            raise DataError(f"corpus_idx of {task} item {index} names facts {missing} that the "
                            "training pool lacks: the files do not belong together.")
        return tuple(positions[i] for i in ids)

    def _check_alignment(self, task: TaskName, rows: list[dict[str, Any]]) -> None:
        # query_id is the English case_id, or the position when the item has none.
        english = self.benchmark.items(task, "en").items
        for item in english:
            expected = item.source.case_id if item.source.case_id is not None else item.index
            if item.index >= len(rows) or rows[item.index].get("query_id") != expected:
                raise DataError(f"corpus_idx of {task} is not position-aligned with the test "
                                f"file at item {item.index} (expected query_id {expected}).")

    def _from_embeddings(self, task: TaskName, statement: str) -> tuple[int, ...]:
        import numpy as np

        vectors = self.pool_vectors(task)
        query = self.embedder.encode([statement])[0]
        scores = vectors @ query
        k = min(self.options.k, len(scores))
        # Stable sort: ties keep pool order, so results are deterministic.
        order = np.argsort(-scores, kind="stable")[:k]
        return tuple(int(i) for i in order)

    def pool_vectors(self, task: TaskName) -> Vectors:
        """Embeddings of the pool's ``src + " " + alt``, computed once and cached on disk."""
        if task not in self._vectors:
            facts = self.pool(task)  # reads the pool and records its sha256
            digest = self._files[self.benchmark.relative(self.benchmark.training_pool_file(task))]
            self._vectors[task] = self.cache.vectors(digest, [f.statement for f in facts],
                                                     self.embedder)
        return self._vectors[task]

    def demonstrations_block(self, case: PromptCase) -> str:
        facts = self.retrieve(case)
        kinds = self.demonstration_types(case.question.metric, len(facts))
        # Nearest fact last, right before the query (as the paper's 8-shot-mixed order ends
        # on demonstration #1); pool texts are English whatever the question's language.
        blocks = [f"{fact.statement}\n{fact.demonstration(kind)}\n\n"
                  for fact, kind in zip(facts, kinds, strict=True)]
        return "".join(reversed(blocks))

    def demonstration_types(self, metric: MetricName, count: int) -> Sequence[DemoType]:
        """The kind of each retrieved demonstration, nearest first."""
        if self.options.types == "metric":
            return [METRIC_TYPES[metric]] * count
        return [MIXED_TYPES[i % len(MIXED_TYPES)] for i in range(count)]

    def demonstration_ids(self, metric: MetricName) -> tuple[int, ...]:
        return ()  # per item, not fixed: see retrieve()

    def describe(self) -> dict[str, object]:
        described = self.options.model_dump(exclude={"data_dir", "cache_dir"})
        if self.options.source == "corpus_idx":
            described.pop("embedder")
        elif self._embedder is not None:
            described["embedder"] = self._embedder.name
        return {"name": self.name, **described}
