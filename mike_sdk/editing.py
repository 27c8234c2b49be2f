"""Edit a model's knowledge in context and ask it questions, in any language.

>>> from mike_sdk import Benchmark, Edit, ask, load_backend
>>> model = load_backend("mock", answer="edit")   # or load_backend("hf"), "openai", ...
>>> fact = Edit(question="Who is the CEO of Acme?", answer="Ada Lovelace")
>>> answer = ask(model, fact, "Wer ist der CEO von Acme?", language="de",
...              benchmark=Benchmark("bmike53"))
>>> answer.answer, answer.cached
('Ada Lovelace', False)
>>> ask(model, fact, "Wer ist der CEO von Acme?", language="de",
...     benchmark=Benchmark("bmike53")).cached        # the same question: from the cache
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, cast

from pydantic import BaseModel, ConfigDict

from mike_sdk.backend import Backend, GenerationRequest
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient, run_sync
from mike_sdk.calls.limits import Limits
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.data.languages import normalize_language
from mike_sdk.errors import ConfigError, DataError
from mike_sdk.memory.records import Retrieved
from mike_sdk.records import Demonstration, Edit, MetricName, Question, TaskName
from mike_sdk.strategy import PromptCase, PromptStrategy, get_strategy

if TYPE_CHECKING:
    from mike_sdk.memory.edited import EditedModel

#: What ``cache=`` takes: a cache, True for the default one, False or None for none.
CacheChoice = ResponseCache | bool | None


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
    input_tokens: int | None = None
    """Prompt tokens the backend reported."""
    output_tokens: int | None = None
    """Generated tokens the backend reported."""
    cost_usd: float | None = None
    """What the call cost (or would have, for a cached answer); None without a price."""
    edits: tuple[Retrieved, ...] = ()
    """The memory's edits the prompt stated, most similar first (an EditedModel's answers)."""


def as_question(question: str | Question, language: str, metric: MetricName) -> Question:
    """``question`` as a :class:`Question` (a string is asked in ``language``)."""
    if isinstance(question, Question):
        return question
    return Question(text=question, language=normalize_language(language), metric=metric)


@contextlib.contextmanager
def client_for(model: Backend | ModelClient, cache: CacheChoice,
            limits: Limits | None) -> Iterator[ModelClient]:
    """``model`` itself if it is a client, else one around it (closing what it opened)."""
    if isinstance(model, ModelClient):
        if cache is not True or limits is not None:
            raise ConfigError("Give cache and limits to the ModelClient, not to ask().")
        yield model
        return
    opened = ResponseCache() if cache is True else None
    try:
        store = cache if isinstance(cache, ResponseCache) else opened
        yield ModelClient(model, cache=store, limits=limits)
    finally:
        if opened is not None:
            opened.close()


def demonstrations_for(strategy: PromptStrategy, task: TaskName,
                       benchmark: Benchmark | None) -> tuple[Demonstration, ...]:
    """The task's demonstration pool when ``strategy`` shows demonstrations, else none."""
    if not strategy.uses_demonstrations:
        return ()
    try:
        return (benchmark or Benchmark()).demonstrations(task)
    except DataError as exc:
        raise DataError(f"Strategy {strategy.name!r} needs the BMIKE-53 demonstrations: "
                        f"{exc} Or use strategy='zero-shot'.") from None


async def answer_cases(client: ModelClient, strategy: PromptStrategy,
                       cases: Sequence[PromptCase]) -> list[Answer]:
    """Render each case with ``strategy``, ask them in one batch and extract the answers."""
    requests = [strategy.render(case, client.backend.abilities) for case in cases]
    answers = await client.generate_many(requests)
    out = []
    for request, answered in zip(requests, answers, strict=True):
        generation = answered.generation
        assert generation is not None  # generate_many raises on refusals
        out.append(Answer(answer=strategy.extract(request, generation.text),
                          output=generation.text, request=request, cached=answered.cached,
                          input_tokens=generation.input_tokens,
                          output_tokens=generation.output_tokens, cost_usd=answered.cost_usd))
    return out


async def aask_many(model: Backend | ModelClient, edit: Edit,
                    questions: Sequence[str | Question], *, language: str = "en",
                    metric: MetricName = "reliability",
                    strategy: str | PromptStrategy = "8-shot-metric-specific",
                    task: TaskName = "zsre", benchmark: Benchmark | None = None,
                    cache: CacheChoice = True, limits: Limits | None = None) -> list[Answer]:
    """Async form of :func:`ask_many`."""
    chosen = get_strategy(strategy)
    demos = demonstrations_for(chosen, task, benchmark)
    with client_for(model, cache, limits) as client:
        return await answer_cases(client, chosen, [
            PromptCase(edit=edit, question=as_question(q, language, metric),
                       demonstrations=demos, task=task) for q in questions])


def _edited(model: object, extra: dict[str, object]) -> EditedModel | None:
    """``model`` if it is an EditedModel (refusing settings that belong to it), else None."""
    from mike_sdk.memory.edited import EditedModel

    if not isinstance(model, EditedModel):
        return None
    given = [name for name, value in extra.items()
             if value is not None and not (name == "cache" and value is True)]
    if given:
        raise ConfigError(f"An EditedModel carries its own {', '.join(given)}: give "
                          f"{'them' if len(given) > 1 else 'it'} to EditedModel(...), "
                          "not to ask().")
    return model


def _backend_call(edit: object, questions: object) -> Edit:
    if not isinstance(edit, Edit) or questions is None:
        raise ConfigError("ask(model, edit, question) needs the edit for a backend; an "
                          "EditedModel finds its edits: ask(EditedModel(model, memory), "
                          "question).")
    return edit


def ask_many(model: Backend | ModelClient | EditedModel,
             edit: Edit | Sequence[str | Question],
             questions: Sequence[str | Question] | None = None, *,
             language: str = "en", metric: MetricName = "reliability",
             strategy: str | PromptStrategy | None = None, task: TaskName | None = None,
             benchmark: Benchmark | None = None, cache: CacheChoice = True,
             limits: Limits | None = None) -> list[Answer]:
    """Ask several questions about one in-context edit, batched, through the same call
    path as an evaluation: cached, rate-limited, retried, priced.

    ``model`` is a backend, or a :class:`~mike_sdk.calls.client.ModelClient` to share its
    cache, limits and budget across calls. ``cache`` is the response cache (``True``: the
    default folder, ``$MIKE_CACHE_DIR`` or the user cache; ``False``: none); ``limits``
    sets rate limits, retries, concurrency and ``max_cost``.
    ``language`` is the language of plain-string questions (demonstrations are shown
    in it); ``metric`` picks metric-specific demonstrations (``locality`` for questions
    the edit must not change, ``portability`` for reasoning through it); ``task`` picks
    the demonstration pool (``zsre`` question style, ``counterfact`` statement style,
    the default); ``strategy`` defaults to ``8-shot-metric-specific``.
    With an :class:`~mike_sdk.memory.edited.EditedModel`, pass the questions alone:
    ``ask_many(edited, questions)``; each retrieves its edits from the memory.
    Raises the call's failure (a :class:`~mike_sdk.calls.failures.CallFailed`) when a
    question gets no answer.
    """
    edited = _edited(model, {"strategy": strategy, "task": task, "benchmark": benchmark,
                             "cache": cache, "limits": limits})
    if edited is not None:
        if questions is not None or isinstance(edit, Edit):
            raise ConfigError("An EditedModel finds its edits: ask_many(edited, questions) "
                              "takes no edit.")
        return edited.ask_many(list(edit), language=language, metric=metric)
    fact = _backend_call(edit, questions)
    assert questions is not None
    plain = cast(Backend | ModelClient, model)  # not an EditedModel: checked above
    work = aask_many(plain, fact, questions, language=language, metric=metric,
                     strategy=strategy or "8-shot-metric-specific", task=task or "zsre",
                     benchmark=benchmark, cache=cache, limits=limits)
    return run_sync(plain.backend if isinstance(plain, ModelClient) else plain, work)


def ask(model: Backend | ModelClient | EditedModel, edit: Edit | str | Question,
        question: str | Question | None = None, *, language: str = "en",
        metric: MetricName = "reliability", strategy: str | PromptStrategy | None = None,
        task: TaskName | None = None, benchmark: Benchmark | None = None,
        cache: CacheChoice = True, limits: Limits | None = None) -> Answer:
    """Put ``edit`` in the prompt and ask ``question``; see :func:`ask_many`.
    ``ask(edited, question)`` asks an EditedModel, which retrieves the edit itself.

    >>> fact = Edit(question="Where does Spike Hughes originate from?", answer="Philadelphia")
    >>> ask(load_backend("hf"), fact, "斯派克·休斯来自哪里？", language="zh").answer
    ... # doctest: +SKIP
    '费城'
    """
    if question is None and not isinstance(edit, Edit):
        return ask_many(model, [edit], language=language, metric=metric, strategy=strategy,
                        task=task, benchmark=benchmark, cache=cache, limits=limits)[0]
    return ask_many(model, edit if isinstance(edit, Edit) else [edit],
                    None if question is None else [question], language=language,
                    metric=metric, strategy=strategy, task=task, benchmark=benchmark,
                    cache=cache, limits=limits)[0]
