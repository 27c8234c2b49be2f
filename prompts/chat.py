"""Chat rendering of the completion strategies, for backends that only take messages."""

from __future__ import annotations

from mike_sdk.backend import ChatMessage

SYSTEM_INSTRUCTION = (
    "You answer questions about facts. A new fact is given before each question: treat it "
    "as true even if it contradicts what you know, and use it whenever the question depends "
    "on it. Reply with the answer only (a few words, no sentence, no explanation, no "
    "quotation marks), written in the language of the question."
)


def chat_messages(content: str) -> tuple[ChatMessage, ...]:
    """A system instruction plus the strategy's completion text as the user turn.

    The trailing ``Answer: "`` stays: it shows chat models where the answer goes.
    """
    return (ChatMessage(role="system", content=SYSTEM_INSTRUCTION),
            ChatMessage(role="user", content=content))


def extract_chat_answer(text: str) -> str:
    """First line of a chat reply, without surrounding quotes or spaces.

    >>> extract_chat_answer(' "Philadelphia"\\n')
    'Philadelphia'
    """
    line = text.strip().split("\n", 1)[0].strip()
    if line.startswith('"'):
        line = line[1:]
    return line.split('"', 1)[0].strip()
