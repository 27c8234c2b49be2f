"""Typed records of the benchmark: facts, items, edits, questions, demonstrations."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

TaskName = Literal["zsre", "counterfact", "wikifactdiff"]
MetricName = Literal["reliability", "generality", "locality", "portability"]
DemoType = Literal["copy", "update", "retain", "portability"]

TASKS: tuple[TaskName, ...] = get_args(TaskName)
METRICS: tuple[MetricName, ...] = get_args(MetricName)


class FactRecord(BaseModel):
    """One test item in one language: the edit, its paraphrase and its probe questions."""

    # The released data carries a stray extra key in one Latin item: ignore extras.
    model_config = ConfigDict(frozen=True, extra="ignore")

    case_id: int | str | None = None
    """The item's id in the source dataset (shared by all languages)."""
    subject: str = ""
    """The entity the fact is about."""
    src: str
    """The edited question (reliability)."""
    rephrase: str
    """A paraphrase of ``src`` (generality)."""
    alt: str
    """The new answer the edit installs."""
    # One Afrikaans item spells the key ``oud``.
    old: str | None = Field(default=None, validation_alias=AliasChoices("old", "oud"))
    """The pre-edit answer (CounterFact and WikiFactDiff only)."""
    loc: str
    """An unrelated question whose answer must not change (locality)."""
    loc_ans: str
    """The gold answer to ``loc`` (empty in a few WikiFactDiff translations)."""
    port: str
    """A one-hop question that needs the new fact (portability)."""
    port_ans: str
    """The gold answer to ``port``."""

    def question(self, metric: MetricName) -> str:
        """The question this record asks for ``metric``."""
        return getattr(self, _QUESTION_FIELD[metric])  # type: ignore[no-any-return]

    def answer(self, metric: MetricName) -> str:
        """The gold answer for ``metric`` (the new answer for reliability and generality)."""
        return getattr(self, _ANSWER_FIELD[metric])  # type: ignore[no-any-return]


_QUESTION_FIELD = {"reliability": "src", "generality": "rephrase", "locality": "loc",
                   "portability": "port"}
_ANSWER_FIELD = {"reliability": "alt", "generality": "alt", "locality": "loc_ans",
                 "portability": "port_ans"}


class Edit(BaseModel):
    """A new fact stated as a question and its new answer, in one language.

    >>> Edit(question="Who is the CEO of Acme?", answer="Ada Lovelace").statement
    'Who is the CEO of Acme? Ada Lovelace'
    """

    model_config = ConfigDict(frozen=True)

    question: str
    """The question the fact answers (``src`` in the data)."""
    answer: str
    """The new answer (``alt`` in the data)."""
    language: str = "en"
    """The language the fact is stated in."""

    @property
    def statement(self) -> str:
        """The fact as the paper writes it in the prompt: question, space, answer."""
        return f"{self.question} {self.answer}"


class Question(BaseModel):
    """A question to ask after an edit, with what it probes and, when known, its answer."""

    model_config = ConfigDict(frozen=True)

    text: str
    """The question itself."""
    language: str = "en"
    """The language it is asked in (strategies pick demonstrations in this language)."""
    metric: MetricName = "reliability"
    """What it probes; metric-specific strategies choose demonstrations by it."""
    gold: str | None = None
    """The expected answer, when known."""


class Item(BaseModel):
    """One benchmark item joined across a source (edit) and a target (question) language."""

    model_config = ConfigDict(frozen=True)

    task: TaskName
    """The task the item comes from."""
    index: int
    """Position in the test file (the same in every language)."""
    source_lang: str
    """Language the edit is stated in."""
    target_lang: str
    """Language the questions are asked in."""
    source: FactRecord
    """The item in the source language."""
    target: FactRecord
    """The item in the target language."""

    @property
    def edit(self) -> Edit:
        """The new fact, in the source language."""
        # Validating (pydantic-core) takes half the time of model_construct's Python loop,
        # and planning a full configuration builds ~130k edits and ~530k questions.
        return Edit(question=self.source.src, answer=self.source.alt,
                    language=self.source_lang)

    def question(self, metric: MetricName) -> Question:
        """The target-language question and gold answer for ``metric``."""
        return Question(text=self.target.question(metric), language=self.target_lang,
                        metric=metric, gold=self.target.answer(metric))


class Demonstration(BaseModel):
    """A hand-written demonstration: an English fact and its question+answer in each language."""

    model_config = ConfigDict(frozen=True)

    case_id: int
    """1-based position in the demonstration file (the paper's numbering)."""
    type: DemoType
    """What the demonstration teaches: copy, update, retain or portability."""
    new_fact: str
    """The demonstrated fact, in English."""
    texts: dict[str, str]
    """Question and answer per language code (``en`` is the English ``prompt``)."""
