"""A model whose knowledge is edited by an :class:`~mike_sdk.memory.store.EditMemory`.

:class:`EditedModel` answers a question by retrieving the edits most similar to it
(in any language) and asking the backend with its strategy's prompt: the paper's
format on completion backends, the chat protocol on chat ones. Each retrieved edit
is one ``New Fact`` line, the most similar last (nearest the question); a question
with no edit above the threshold is asked with no fact at all.

>>> memory = EditMemory("edits.sqlite", embedder="multilingual-e5-small-q4")  # doctest: +SKIP
>>> memory.add("Who is the CEO of Acme?", "Ada Lovelace")                    # doctest: +SKIP
>>> edited = EditedModel(load_backend("mock", answer="edit"), memory,
...                      strategy="zero-shot")                                # doctest: +SKIP
>>> ask(edited, "Wer ist der CEO von Acme?", language="de").answer   # doctest: +SKIP
'Ada Lovelace'
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mike_sdk.backend import Backend
from mike_sdk.calls.client import ModelClient, run_sync
from mike_sdk.calls.limits import Limits
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.editing import (
    Answer,
    CacheChoice,
    answer_cases,
    as_question,
    client_for,
    demonstrations_for,
)
from mike_sdk.errors import ConfigError
from mike_sdk.memory.records import MemorySettings, Retrieved
from mike_sdk.memory.store import EditMemory
from mike_sdk.records import Edit, MetricName, Question, TaskName
from mike_sdk.run.config import EvalConfig
from mike_sdk.strategy import PromptCase, PromptStrategy, get_strategy


class EditedModel:
    """A backend plus an edit memory: ``ask(edited, question)`` needs no edit.

    ``k`` edits at most go into one prompt (those at or above ``threshold``, else the
    memory's threshold); ``strategy``, ``task`` and ``benchmark`` choose the prompt as in
    :func:`~mike_sdk.editing.ask`; ``cache`` and ``limits`` build the client when
    ``model`` is a backend.
    """

    def __init__(self, model: Backend | ModelClient, memory: EditMemory, *,
                 strategy: str | PromptStrategy = "8-shot-metric-specific", k: int = 1,
                 threshold: float | None = None, task: TaskName = "zsre",
                 benchmark: Benchmark | None = None, cache: CacheChoice = True,
                 limits: Limits | None = None) -> None:
        if k < 1:
            raise ConfigError(f"EditedModel: k is the most edits per prompt, at least 1 "
                              f"(got {k}).")
        self.model = model
        self.memory = memory
        self.strategy = get_strategy(strategy)
        self.k = k
        self.threshold = threshold
        self.task: TaskName = task
        self.benchmark = benchmark
        self.cache = cache
        self.limits = limits

    @property
    def backend(self) -> Backend:
        """The backend answering."""
        return self.model.backend if isinstance(self.model, ModelClient) else self.model

    def retrieve_many(self, questions: Sequence[str]) -> list[list[Retrieved]]:
        """The edits each question gets, most similar first."""
        return self.memory.search_many(questions, k=self.k, threshold=self.threshold)

    def case(self, question: Question, found: Sequence[Retrieved]) -> PromptCase:
        """The prompt case for ``question`` with the edits ``found`` (most similar first)."""
        demos = demonstrations_for(self.strategy, self.task, self.benchmark)
        edits = tuple(r.edit.edit for r in reversed(found))
        # ``edit`` stays set for strategies that read it (retrieved demonstrations): the
        # nearest edit, or the question itself when no edit applies.
        anchor = edits[-1] if edits else Edit(question=question.text, answer="",
                                              language=question.language)
        return PromptCase(edit=anchor, edits=edits, question=question, demonstrations=demos,
                          task=self.task)

    async def aask_many(self, questions: Sequence[str | Question], *, language: str = "en",
                        metric: MetricName = "reliability") -> list[Answer]:
        """Async form of :meth:`ask_many`."""
        asked = [as_question(q, language, metric) for q in questions]
        found = await asyncio.to_thread(self.retrieve_many, [q.text for q in asked])
        cases = [self.case(q, hits) for q, hits in zip(asked, found, strict=True)]
        with client_for(self.model, self.cache, self.limits) as client:
            answers = await answer_cases(client, self.strategy, cases)
        return [a.model_copy(update={"edits": tuple(hits)})
                for a, hits in zip(answers, found, strict=True)]

    def ask_many(self, questions: Sequence[str | Question], *, language: str = "en",
                 metric: MetricName = "reliability") -> list[Answer]:
        """Answer each question with the edits it retrieves (``Answer.edits``)."""
        return run_sync(self.backend, self.aask_many(questions, language=language,
                                                     metric=metric))

    def evaluation_config(self, config: EvalConfig) -> EvalConfig:
        """``config`` in the ``--edit-memory`` mode with this model's strategy and retrieval
        settings (evaluate() uses it; the embedder must be registered by name)."""
        return config.model_copy(update={"strategy": self.strategy.name, "edit_memory":
                                         MemorySettings(embedder=self.memory.embedder.name,
                                                        k=self.k, threshold=self.threshold)})

    def __repr__(self) -> str:
        return (f"EditedModel({self.backend.identity.model!r}, {self.memory!r}, "
                f"strategy={self.strategy.name!r}, k={self.k})")
