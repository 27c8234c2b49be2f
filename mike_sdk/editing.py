"""Edit a model's knowledge in context and ask it questions, in any language.

>>> from mike_sdk import ask, Edit, load_backend                            # doctest: +SKIP
>>> model = load_backend("hf")                                              # doctest: +SKIP
>>> ask(model, Edit(question="Who is the CEO of Acme?", answer="Ada Lovelace"),
...     "Wer ist der CEO von Acme?", language="de").answer                   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from .backend import Backend, GenerationRequest
from .cache import ResponseCache, cacheable, request_key
from .data import Benchmark
from .errors import DataError
from .languages import normalize_language
from .records import Demonstration, Edit, MetricName, Question, TaskName
from .strategy import PromptCase, PromptStrategy, get_strategy


class Answer(BaseModel):
    """A model's answer to one question after an in-context edit."""

    model_config = ConfigDict(frozen=True)

    answer: str
    """The answer the strategy extracted."""
    output: str
    """The model's raw text."""
    request: GenerationRequest
    """Exactly what was sent."""
    cached: bool = False
    """Whether it came from the response cache."""


def _as_question(question: str | Question, language: str, metric: MetricName) -> Question:
    if isinstance(question, Question):
        return question
    return Question(text=question, language=normalize_language(language), metric=metric)


async def aask_many(backend: Backend, edit: Edit, questions: Sequence[str | Question], *,
                    language: str = "en", metric: MetricName = "reliability",
                    strategy: str | PromptStrategy = "8-shot-metric-specific",
                    task: TaskName = "zsre", benchmark: Benchmark | None = None,
                    cache: ResponseCache | None = None) -> list[Answer]:
    """Async form of :func:`ask_many`."""
    chosen = get_strategy(strategy)
    demos: tuple[Demonstration, ...] = ()
    if chosen.uses_demonstrations:
        try:
            demos = (benchmark or Benchmark()).demonstrations(task)
        except DataError as exc:
            raise DataError(f"Strategy {chosen.name!r} needs the BMIKE-53 demonstrations: "
                            f"{exc} Or use strategy='zero-shot'.") from None
    requests = [chosen.render(PromptCase(edit=edit, question=_as_question(q, language, metric),
                                         demonstrations=demos, task=task),
                              backend.abilities) for q in questions]
    keys = [request_key(backend.identity, "generate", r) for r in requests]
    found = cache.get_many(keys) if cache is not None else {}
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        size = backend.abilities.batch_size
        for start in range(0, len(missing), size):
            part = missing[start:start + size]
            generations = await backend.generate([requests[i] for i in part])
            for i, gen in zip(part, generations, strict=True):
                found[keys[i]] = gen.model_dump()
            if cache is not None:
                cache.put_many((keys[i], g.model_dump())
                               for i, g in zip(part, generations, strict=True) if cacheable(g))
    return [Answer(answer=chosen.extract(r, found[k]["text"]), output=found[k]["text"],
                   request=r, cached=i not in missing)
            for i, (r, k) in enumerate(zip(requests, keys, strict=True))]


def ask_many(backend: Backend, edit: Edit, questions: Sequence[str | Question], *,
             language: str = "en", metric: MetricName = "reliability",
             strategy: str | PromptStrategy = "8-shot-metric-specific",
             task: TaskName = "zsre", benchmark: Benchmark | None = None,
             cache: ResponseCache | None = None) -> list[Answer]:
    """Ask several questions about one in-context edit, batched.

    ``language`` is the language of plain-string questions (demonstrations are shown
    in it); ``metric`` picks metric-specific demonstrations (``locality`` for questions
    the edit must not change, ``portability`` for reasoning through it); ``task`` picks
    the demonstration pool (``zsre`` question style, ``counterfact`` statement style).
    """
    return asyncio.run(aask_many(backend, edit, questions, language=language, metric=metric,
                                 strategy=strategy, task=task, benchmark=benchmark,
                                 cache=cache))


def ask(backend: Backend, edit: Edit, question: str | Question, *, language: str = "en",
        metric: MetricName = "reliability",
        strategy: str | PromptStrategy = "8-shot-metric-specific", task: TaskName = "zsre",
        benchmark: Benchmark | None = None, cache: ResponseCache | None = None) -> Answer:
    """Put ``edit`` in the prompt and ask ``question``; see :func:`ask_many`.

    >>> fact = Edit(question="Where does Spike Hughes originate from?", answer="Philadelphia")
    >>> ask(backend, fact, "斯派克·休斯来自哪里？", language="zh").answer  # doctest: +SKIP
    '费城'
    """
    return ask_many(backend, edit, [question], language=language, metric=metric,
                    strategy=strategy, task=task, benchmark=benchmark, cache=cache)[0]
