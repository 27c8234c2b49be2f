"""A deterministic stand-in model: test strategies, runs and reports without a model.

Every answer is a pure function of the request (a sha256 of its prompt or messages),
so a run gives the same answers on every machine. Options make it slow
(``latency_s``), flaky (``failure_rate``, raising the SDK's own failure classes) or
knowledgeable (``replies``), and it counts what it was asked, so tests can check
batching, concurrency and retries. No I/O, no model, nothing to install.

>>> import asyncio
>>> from mike_sdk.backend import GenerationRequest
>>> mock = MockBackend(replies={"capital of France": "Paris"})
>>> requests = [GenerationRequest(prompt='Question: "The capital of France?" Answer: "',
...                               stop=('"',)),
...             GenerationRequest(prompt="Q: 1+1?")]
>>> [g.text for g in asyncio.run(mock.generate(requests))]
['Paris"', 'mock answer b205a3']
>>> mock.calls, len(mock.requests), mock.peak_in_flight
(1, 2, 1)

From the command line: ``mike eval --backend mock --backend-option answer=fixed
--backend-option text=Paris ...``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mike_sdk.backend import (
    BACKENDS,
    Abilities,
    Backend,
    FinishReason,
    Generation,
    GenerationRequest,
    Identity,
    Likelihood,
    LikelihoodRequest,
)
from mike_sdk.calls.failures import BadRequest, CallFailed, RateLimited, Transient
from mike_sdk.errors import ConfigError, invalid_options

__all__ = ["MockBackend", "MockOptions", "MockTokenizer", "request_text"]

FailureKind = Literal["transient", "rate_limited", "bad_request"]
AnswerMode = Literal["hash", "fixed", "choice", "echo", "edit"]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_NEW_FACT = re.compile(r'New Fact: "[^"\n]*\?\s*([^"\n]*)"')


class MockOptions(BaseModel):
    """Constructor options of :class:`MockBackend`, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(default="mock", min_length=1)
    """Model name in the identity (runs of two names never share cached answers)."""
    answer: AnswerMode = "hash"
    """How answers are made: ``hash`` (``text`` plus six hex digits of the request's sha256),
    ``fixed`` (always ``text``), ``choice`` (one of ``choices``, picked by the hash),
    ``echo`` (the prompt itself) or ``edit`` (the new answer of the prompt's last
    ``New Fact: "question? answer"``, else as ``hash``: a perfect in-context editor)."""
    text: str = "mock answer"
    """The fixed answer, or the prefix of hash answers."""
    choices: tuple[str, ...] = ("Paris", "London", "Berlin", "Madrid")
    """Answers the ``choice`` mode picks from."""
    replies: dict[str, str] = Field(default_factory=dict)
    """Substring -> answer: a request containing the substring gets that answer (first match
    wins, before the ``answer`` mode)."""
    latency_s: float = Field(default=0.0, ge=0)
    """Seconds each call takes (``asyncio.sleep``: concurrent calls overlap)."""
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of requests that fail, chosen by a hash of the request and ``seed``."""
    failure_kinds: tuple[FailureKind, ...] = Field(default=("transient",), min_length=1)
    """Failure classes raised (one per failing request, picked by its hash); a comma list
    on the command line."""
    failures_per_request: int | None = Field(default=1, ge=1)
    """Attempts that fail before a failing request succeeds (None: it always fails)."""
    retry_after_s: float | None = Field(default=None, ge=0)
    """``retry_after`` of the :class:`RateLimited` failures."""
    seed: int = 0
    """Picks which requests fail."""
    batch_size: int = Field(default=8, ge=1)
    """Preferred requests per call (declared in the abilities)."""
    max_concurrency: int = Field(default=4, ge=1)
    """Calls in flight at once (declared in the abilities)."""
    completion: bool = True
    """Accepts raw completion prompts."""
    chat: bool = False
    """Accepts chat messages."""
    tokenizer: bool = True
    """Offers its word tokenizer (for the paper's F1)."""
    loglikelihood: bool = True
    """Scores continuations (deterministic pseudo log-probabilities)."""

    @field_validator("failure_kinds", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        # ``--backend-option failure_kinds=bad_request,transient`` arrives as one string.
        return tuple(value.split(",")) if isinstance(value, str) else value

    @field_validator("text", mode="before")
    @classmethod
    def _numbers_are_text(cls, value: Any) -> Any:
        # ``--backend-option text=2006`` arrives as an int.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) \
            else value


class MockTokenizer:
    """Words and punctuation marks as tokens, each id a hash of its text: no vocabulary.

    >>> tok = MockTokenizer()
    >>> ids = tok.encode("Paris, Paris")
    >>> len(ids), ids[0] == ids[2], ids[0] == ids[1]
    (3, True, False)
    """

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens)."""
        return [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "big")
                for t in _TOKEN.findall(text)]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """:meth:`encode` of each text."""
        return [self.encode(t) for t in texts]


def request_text(request: GenerationRequest) -> str:
    """What a request says: its prompt, else its messages as ``role: content`` lines."""
    if request.prompt is not None:
        return request.prompt
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages or ())


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@BACKENDS.register("mock")
class MockBackend(Backend):
    """A deterministic fake model (no weights, no server): answers hash the prompt."""

    def __init__(self, model: str = "mock", **options: Any) -> None:
        try:
            self.options = MockOptions(model=model, **options)
        except ValidationError as exc:
            raise invalid_options("the 'mock' backend", exc) from None
        opts = self.options
        if not (opts.completion or opts.chat):
            raise ConfigError("The 'mock' backend needs completion=True or chat=True.")
        self.tokenizer = MockTokenizer()
        """The tokenizer behind ``get_tokenizer`` and the token counts."""
        self.calls = 0
        """``generate`` calls made (failed ones included)."""
        self.requests: list[GenerationRequest] = []
        """Every generation request received, in order (retried ones again)."""
        self.batch_sizes: list[int] = []
        """Size of each ``generate`` call."""
        self.likelihood_calls = 0
        """``loglikelihood`` calls made."""
        self.scored: list[LikelihoodRequest] = []
        """Every likelihood request received, in order."""
        self.failures: Counter[str] = Counter()
        """Failures raised, by class name."""
        self.in_flight = 0
        """Calls running now."""
        self.peak_in_flight = 0
        """Most calls that ran at once."""
        self.closed = False
        """Whether :meth:`aclose` was called."""
        self._attempts: Counter[str] = Counter()

    def __repr__(self) -> str:
        changed = self.options.model_dump(exclude_defaults=True)
        return f"MockBackend({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    @property
    def identity(self) -> Identity:
        """``mock`` + model; the revision fingerprints non-default answer options."""
        opts = self.options
        answers = opts.model_dump(include={"answer", "text", "choices", "replies"},
                                  exclude_defaults=True)
        revision = None
        if answers:
            blob = json.dumps(answers, sort_keys=True)
            revision = f"answers:{_digest(blob)[:12]}"
        return Identity(kind="mock", model=opts.model, revision=revision)

    @property
    def abilities(self) -> Abilities:
        """As configured (default: completion, tokenizer, likelihoods, batches of 8, 4 in
        flight)."""
        opts = self.options
        return Abilities(completion=opts.completion, chat=opts.chat, tokenizer=opts.tokenizer,
                         loglikelihood=opts.loglikelihood, batch_size=opts.batch_size,
                         max_concurrency=opts.max_concurrency)

    def answer_for(self, request: GenerationRequest) -> str:
        """The answer (before stop strings and the token limit) a request gets."""
        opts = self.options
        text = request_text(request)
        for needle, reply in opts.replies.items():
            if needle in text:
                return reply
        if opts.answer == "fixed":
            return opts.text
        if opts.answer == "echo":
            return text
        if opts.answer == "edit":
            facts = _NEW_FACT.findall(text)
            if facts:
                return str(facts[-1]).strip()
        digest = _digest(text)
        if opts.answer == "choice":
            return opts.choices[int(digest, 16) % len(opts.choices)] if opts.choices else ""
        return f"{opts.text} {digest[:6]}"

    def _failure(self, request: GenerationRequest) -> CallFailed | None:
        opts = self.options
        if not opts.failure_rate:
            return None
        key = _digest(str(opts.seed), request.model_dump_json())
        if int(key[:8], 16) / 0x1_0000_0000 >= opts.failure_rate:
            return None
        if (opts.failures_per_request is not None
                and self._attempts[key] >= opts.failures_per_request):
            return None
        self._attempts[key] += 1
        kind = opts.failure_kinds[int(key[8:16], 16) % len(opts.failure_kinds)]
        if kind == "rate_limited":
            return RateLimited("Rate limited (429): injected by the mock backend", status=429,
                               retry_after=opts.retry_after_s)
        if kind == "bad_request":
            return BadRequest("Request refused (400): injected by the mock backend", status=400)
        return Transient("Server error (503): injected by the mock backend", status=503)

    def _generation(self, request: GenerationRequest) -> Generation:
        text = self.answer_for(request)
        finish: FinishReason = "eos"
        words = _TOKEN.findall(text)
        if len(words) > request.max_new_tokens:
            # Cut after the last allowed token, keeping the original spacing.
            end = 0
            for match, _ in zip(_TOKEN.finditer(text), range(request.max_new_tokens),
                                strict=False):
                end = match.end()
            text, finish = text[:end], "length"
        elif request.stop and request.prompt is not None:
            text, finish = text + request.stop[0], "stop"
        output_ids = self.tokenizer.encode(text)
        logprobs = None
        if request.logprobs:
            digest = _digest("logprobs", request_text(request))
            logprobs = tuple(-int(digest[2 * i % 60:2 * i % 60 + 2], 16) / 64
                             for i in range(len(output_ids)))
        input_tokens = len(self.tokenizer.encode(request_text(request)))
        return Generation(text=text, input_tokens=input_tokens, output_tokens=len(output_ids),
                          finish_reason=finish, logprobs=logprobs)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Answers in order after ``latency_s``; a failing request fails the whole call."""
        self.calls += 1
        self.requests.extend(requests)
        self.batch_sizes.append(len(requests))
        opts = self.options
        for request in requests:
            if request.prompt is None and not request.messages:
                raise BadRequest("A generation request needs a prompt or messages.")
            if request.prompt is not None and not opts.completion and not request.messages:
                raise BadRequest("This mock takes chat messages only (completion=False).")
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if opts.latency_s:
                await asyncio.sleep(opts.latency_s)
            for request in requests:
                failure = self._failure(request)
                if failure is not None:
                    self.failures[type(failure).__name__] += 1
                    raise failure
            return [self._generation(r) for r in requests]
        finally:
            self.in_flight -= 1

    async def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[Likelihood]:
        """A pseudo log-probability per continuation: -1 to -11 per token, by hash."""
        if not self.options.loglikelihood:
            return await super().loglikelihood(requests)
        self.likelihood_calls += 1
        self.scored.extend(requests)
        if self.options.latency_s:
            await asyncio.sleep(self.options.latency_s)
        out = []
        for request in requests:
            tokens = max(1, len(self.tokenizer.encode(request.continuation)))
            per_token = 1 + int(_digest(request.context, request.continuation)[:8], 16) % 1000 / 100
            out.append(Likelihood(logprob=-per_token * tokens, tokens=tokens))
        return out

    def get_tokenizer(self) -> MockTokenizer | None:
        """The word tokenizer, unless ``tokenizer=False``."""
        return self.tokenizer if self.options.tokenizer else None

    async def aclose(self) -> None:
        """Nothing to release; records that it was called."""
        self.closed = True
