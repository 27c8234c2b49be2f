"""The prompt-strategy interface and its registry.

A strategy turns an edit and a question into one :class:`GenerationRequest`
(a raw completion prompt for completion backends, chat messages for chat-only
ones) and pulls the answer out of the model's text. Register your own with::

    from mike_sdk import STRATEGIES, PromptStrategy

    @STRATEGIES.register("my-strategy")
    class MyStrategy(PromptStrategy): ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from mike_sdk.backend import Abilities, GenerationRequest
from mike_sdk.errors import ConfigError
from mike_sdk.records import Demonstration, Edit, Question, TaskName
from mike_sdk.registry import Registry

if TYPE_CHECKING:
    from mike_sdk.data.benchmark import Benchmark


class PromptCase(BaseModel):
    """Everything a strategy may look at to build one request."""

    model_config = ConfigDict(frozen=True)

    edit: Edit
    """The new fact, in the source language."""
    question: Question
    """The question, in the target language, with the metric it probes."""
    demonstrations: tuple[Demonstration, ...] = ()
    """The task's hand-written demonstration pool (empty when none is loaded)."""
    task: TaskName | None = None
    """The benchmark task, when the case comes from BMIKE-53."""
    index: int | None = None
    """The item's position in its test file, when the case comes from BMIKE-53."""
    edits: tuple[Edit, ...] | None = None
    """The edits to state instead of ``edit`` when an edit memory chose them (most similar
    last, nearest the question; empty when none applies); None: ``edit`` alone."""

    @property
    def shown_edits(self) -> tuple[Edit, ...]:
        """The edits the prompt states, in prompt order."""
        return (self.edit,) if self.edits is None else self.edits


class PromptStrategy(ABC):
    """Builds requests from cases and extracts answers from generations.

    Implement :meth:`render` and :meth:`extract`. A strategy that reads more of the
    benchmark than the cases it is given (a retrieval pool, say) also overrides
    :meth:`bind` to get the evaluator's :class:`~mike_sdk.data.benchmark.Benchmark`,
    and :attr:`files` to name what it read, so that run manifests record it.
    """

    #: Registered name; set by subclasses.
    name: str = ""
    #: Whether :meth:`render` needs ``case.demonstrations``.
    uses_demonstrations: bool = False

    @abstractmethod
    def render(self, case: PromptCase, abilities: Abilities) -> GenerationRequest:
        """The request to send for ``case`` to a backend with ``abilities``."""

    @abstractmethod
    def extract(self, request: GenerationRequest, text: str) -> str:
        """The answer contained in ``text``, the backend's output for ``request``."""

    def bind(self, benchmark: Benchmark) -> None:  # noqa: B027 - optional hook
        """Called by the evaluator with its benchmark before the first :meth:`render`.

        The default ignores it: cases carry everything most strategies need.
        """

    @property
    def files(self) -> dict[str, str]:
        """Extra data files read so far: sha256 by path relative to the data root.

        The evaluator adds them to the run manifest's ``data_files`` after a run.
        Default: none (the test files and demonstration pools are recorded anyway).
        """
        return {}

    def describe(self) -> dict[str, object]:
        """Settings recorded in run manifests (override when a strategy has options)."""
        return {"name": self.name}

    def chat_protocol(self) -> dict[str, object] | None:
        """How chat messages are rendered and replies read, recorded in the manifest of
        runs that send chat (default: None, nothing to record)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


#: Prompt strategies by name. Third-party packages use the entry-point group
#: ``mike_sdk.strategies``.
STRATEGIES: Registry[PromptStrategy] = Registry("strategy", "mike_sdk.strategies",
                                                "mike_sdk.prompts")


def get_strategy(strategy: str | PromptStrategy, **options: object) -> PromptStrategy:
    """A strategy instance from a registered name or an instance (returned as is)."""
    if isinstance(strategy, PromptStrategy):
        if options:
            raise ConfigError("Strategy options go to the strategy's constructor, not here.")
        return strategy
    instance = STRATEGIES.create(strategy, **options)
    instance.name = strategy
    return instance
