"""MIKE's prompt strategies, rendered exactly as the BMIKE-53 protocol specifies.

A completion prompt is the chosen demonstrations, then the query::

    <English new_fact>\\n<demonstration in the question's language>\\n\\n   (per demonstration)
    New Fact: "<source src> <source alt>"\\n
    Question: "<target question>" Answer: "

The model continues greedily for at most 15 tokens; the answer is cut at the
first ``"``. Chat-only backends get the same content as a user message under a
system instruction (the chat protocol, :mod:`mike_sdk.chat`).
"""

from __future__ import annotations

from collections.abc import Sequence

from mike_sdk.backend import Abilities, GenerationRequest
from mike_sdk.chat import ANSWER_TOKENS, chat_messages, describe_protocol, extract_chat_answer
from mike_sdk.errors import ConfigError
from mike_sdk.records import MetricName
from mike_sdk.strategy import STRATEGIES, PromptCase, PromptStrategy

MAX_NEW_TOKENS = ANSWER_TOKENS
ANSWER_END = '"'


def query_text(fact: str | Sequence[str], question: str) -> str:
    """The paper's query block, ending right where the answer starts.

    Several facts (edits retrieved from a memory) are one ``New Fact`` line each, in the
    order given; none leaves the question alone.
    """
    facts = [fact] if isinstance(fact, str) else list(fact)
    stated = "".join(f'New Fact: "{f}"\n' for f in facts)
    return f'{stated}Question: "{question}" Answer: "'


class DemonstrationStrategy(PromptStrategy):
    """The paper's formatting; subclasses say which demonstrations (by number, 1-32) to show."""

    uses_demonstrations = True

    def __init__(self) -> None:
        # Demonstration blocks repeat for every item: build each once per
        # (pool, language, metric). The pool's first demonstration is kept in the value
        # so that its id cannot be reused by another object.
        self._blocks: dict[tuple[int, str, str], tuple[object, str]] = {}

    def demonstration_ids(self, metric: MetricName) -> tuple[int, ...]:
        """Demonstration numbers for a question probing ``metric``, in prompt order."""
        raise NotImplementedError

    def demonstrations_block(self, case: PromptCase) -> str:
        """The concatenated demonstrations for ``case`` (empty for zero-shot)."""
        ids = self.demonstration_ids(case.question.metric)
        if not ids:
            return ""
        pool = case.demonstrations
        # Validation copies the tuple but not the demonstrations: key on the first one.
        key = (id(pool[0]) if pool else 0, case.question.language, case.question.metric)
        cached = self._blocks.get(key)
        if cached is not None and pool and cached[0] is pool[0]:
            return cached[1]
        if len(pool) < max(ids):
            raise ConfigError(f"Strategy {self.name!r} needs demonstrations #{max(ids)} but "
                              f"{len(pool)} are loaded; pass the task's pool "
                              "(Benchmark.demonstrations(task)).")
        lang = case.question.language
        block = "".join(f"{pool[i - 1].new_fact}\n{pool[i - 1].texts[lang]}\n\n" for i in ids)
        self._blocks[key] = (pool[0], block)
        return block

    def render(self, case: PromptCase, abilities: Abilities) -> GenerationRequest:
        content = self.demonstrations_block(case) + query_text(
            [e.statement for e in case.shown_edits], case.question.text)
        if abilities.completion:
            return GenerationRequest(prompt=content, stop=(ANSWER_END,),
                                     max_new_tokens=MAX_NEW_TOKENS)
        if abilities.chat:
            return GenerationRequest(messages=chat_messages(content),
                                     max_new_tokens=MAX_NEW_TOKENS)
        raise ConfigError("The backend declares neither completion nor chat ability.")

    def extract(self, request: GenerationRequest, text: str) -> str:
        if request.prompt is not None:
            return text.split(ANSWER_END)[0]
        return extract_chat_answer(text)

    def chat_protocol(self) -> dict[str, object]:
        return describe_protocol()

    def describe(self) -> dict[str, object]:
        return {"name": self.name,
                "demonstrations": {m: list(self.demonstration_ids(m))
                                   for m in ("reliability", "generality", "locality",
                                             "portability")}}


@STRATEGIES.register("zero-shot")
class ZeroShot(DemonstrationStrategy):
    """No demonstrations: just the new fact and the question."""

    uses_demonstrations = False

    def demonstration_ids(self, metric: MetricName) -> tuple[int, ...]:
        return ()


@STRATEGIES.register("one-shot")
class OneShot(DemonstrationStrategy):
    """One fixed demonstration; the paper's seed picks #2 (an ``update`` example)."""

    def __init__(self, demonstration: int = 2) -> None:
        super().__init__()
        if not 1 <= demonstration <= 32:
            raise ConfigError(f"one-shot: demonstration must be 1..32, got {demonstration}.")
        self.demonstration = demonstration

    def demonstration_ids(self, metric: MetricName) -> tuple[int, ...]:
        return (self.demonstration,)


@STRATEGIES.register("8-shot-mixed")
class EightShotMixed(DemonstrationStrategy):
    """Demonstrations #1-#8 (one copy, three updates, two retains, two portability), #8 first."""

    def demonstration_ids(self, metric: MetricName) -> tuple[int, ...]:
        return (8, 7, 6, 5, 4, 3, 2, 1)


METRIC_DEMONSTRATIONS: dict[MetricName, tuple[int, ...]] = {
    "reliability": (1, 2, 9, 10, 17, 18, 25, 26),
    "generality": (1, 2, 9, 10, 17, 18, 25, 26),
    "locality": (5, 6, 13, 14, 21, 22, 29, 30),
    "portability": (7, 8, 15, 16, 23, 24, 31, 32),
}


@STRATEGIES.register("8-shot-metric-specific")
class EightShotMetricSpecific(DemonstrationStrategy):
    """Eight demonstrations of the kind the question probes (copy+update, retain, portability)."""

    def demonstration_ids(self, metric: MetricName) -> tuple[int, ...]:
        return METRIC_DEMONSTRATIONS[metric]
