"""A backend in a few lines: subclass ``Backend``, implement ``identity`` and ``generate``.

"echo" answers every question with the answer of the new fact in its prompt: a model
that always follows the edit (useful to test a strategy's prompt and answer extraction
without a model). Runs offline in a second::

    python examples/custom_backend.py
    mike --include examples/custom_backend.py eval --backend echo --strategy zero-shot \\
        --tasks zsre --languages de --limit 3 --data-dir ../shared/bmike53
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mike_sdk import BACKENDS, Backend, Edit, ask_many
from mike_sdk.backend import Generation, GenerationRequest, Identity

NEW_FACT = re.compile(r'New Fact: "[^"]*\? ([^"]*)"')


@BACKENDS.register("echo")
class EchoBackend(Backend):
    """Answers with the new fact's answer (a model that always follows the edit)."""

    @property
    def identity(self) -> Identity:
        return Identity(kind="echo", model="echo-1")

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        answers = []
        for request in requests:
            found = NEW_FACT.findall(request.prompt or "")  # the last one is the edit
            answers.append(Generation(text=(found[-1] if found else "") + '"',
                                      finish_reason="stop"))
        return answers


if __name__ == "__main__":
    fact = Edit(question="Where does Spike Hughes originate from?", answer="Philadelphia")
    questions = ["Woher stammt Spike Hughes?", "Was ist die Heimatstadt von Spike Hughes?"]
    # Zero-shot needs no benchmark data; cache=False keeps the user cache clean.
    answers = ask_many(EchoBackend(), fact, questions, language="de", strategy="zero-shot",
                       cache=False)
    for question, answer in zip(questions, answers, strict=True):
        print(f"{question} -> {answer.answer!r}")
