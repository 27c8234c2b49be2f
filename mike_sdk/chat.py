"""The chat protocol: how a completion strategy is asked of a chat model, and how its
answer is read back. Defined once, for every chat backend.

* **Instruction.** A system message (:data:`SYSTEM_INSTRUCTION`) that says to treat the
  new fact as true and to reply with the answer only, in the question's language.
* **User turn.** The strategy's completion prompt, byte-identical, ending in
  ``Answer: "``: it shows the model where the answer goes.
* **Prefill.** Where the model's profile allows it, the backend starts the reply with
  the opening quote (:data:`PREFILL`) and stops at the closing one, so the reply is the
  same continuation as on the completion path. Claude 4.6 and later, and OpenAI's
  models, take no prefill: they reply freely and :func:`extract_chat_answer` reads it.
* **Token budget.** :data:`ANSWER_TOKENS` (15), as on the completion path; a reasoning
  model gets its reasoning budget on top of it (the backend adds it).
* **Extraction.** :func:`extract_chat_answer`: the first non-empty line, without
  surrounding spaces and one pair of quotes, cut at the next quote. The completion path
  cuts at the first ``"`` only (the paper's rule): a chat reply is a new turn whose
  leading space, quotes and trailing explanation are formatting, not the answer.
"""

from __future__ import annotations

from mike_sdk.backend import ChatMessage

__all__ = ["ANSWER_SLOT", "ANSWER_TOKENS", "PREFILL", "SYSTEM_INSTRUCTION", "chat_messages",
           "describe_protocol", "extract_chat_answer", "wants_prefill"]

SYSTEM_INSTRUCTION = (
    "You answer questions about facts. A new fact is given before each question: treat it "
    "as true even if it contradicts what you know, and use it whenever the question depends "
    "on it. Reply with the answer only (a few words, no sentence, no explanation, no "
    "quotation marks), written in the language of the question."
)
#: Where the user turn ends: the answer's opening quote.
ANSWER_SLOT = 'Answer: "'
#: The reply's start where prefill is allowed.
PREFILL = '"'
#: Tokens for the answer on both paths (the paper's limit).
ANSWER_TOKENS = 15


def chat_messages(content: str) -> tuple[ChatMessage, ...]:
    """A system instruction plus the strategy's completion text as the user turn."""
    return (ChatMessage(role="system", content=SYSTEM_INSTRUCTION),
            ChatMessage(role="user", content=content))


def wants_prefill(last_user_turn: str) -> bool:
    """Whether a reply may start inside the answer's quotes: the turn ends at the slot.

    Trailing spaces do not count (Anthropic refuses a prefill that ends in whitespace).
    """
    return last_user_turn.rstrip().endswith(ANSWER_SLOT)


def extract_chat_answer(text: str) -> str:
    """First non-empty line of a chat reply, without surrounding quotes or spaces.

    >>> extract_chat_answer(' "Philadelphia"\\n')
    'Philadelphia'
    >>> extract_chat_answer('Philadelphia\\n\\nThe new fact says so.')
    'Philadelphia'
    """
    line = text.strip().split("\n", 1)[0].strip()
    if line.startswith('"'):
        line = line[1:]
    return line.split('"', 1)[0].strip()


def describe_protocol() -> dict[str, object]:
    """The protocol as recorded in the manifest of a run that sends chat messages."""
    return {"instruction": SYSTEM_INSTRUCTION,
            "user_turn": "the completion prompt, byte-identical, ending in " + ANSWER_SLOT,
            "prefill": f"{PREFILL} where the model profile allows it, with the stop {PREFILL}",
            "answer_tokens": ANSWER_TOKENS,
            "extraction": "first non-empty line, spaces and one pair of quotes removed, cut "
                          "at the next quote"}
