"""The likelihood check through an OpenAI-compatible server's prompt log-probabilities.

The paper scores a continuation by the mean log-probability of its tokens after the
prompt: the joined text is encoded, and as many final tokens are scored as the
continuation has on its own (the HF backend does the same). A server that returns the
log-probability of every prompt token gives exactly that from one completions request
for the joined text:

* ``echo``: ``echo: true`` with ``logprobs`` (OpenAI's legacy completions wire, which
  vLLM implements): ``choices[0].logprobs.token_logprobs`` starts with the prompt's
  tokens, the first one ``null``.
* ``prompt_logprobs``: vLLM's extra parameter: ``choices[0].prompt_logprobs`` holds,
  per prompt token, ``null`` for the first and ``{token_id: {logprob, rank,
  decoded_token}}`` after.

The continuation's own token count comes from vLLM's ``POST /tokenize`` (at the
server's root, not under ``/v1``) with ``add_special_tokens: false``.

Some servers return wrong prompt log-probabilities (llama.cpp's server, in the version
used here, scores echoed tokens far below what it gives the same tokens when it
generates them). So each server is checked once before it scores anything: it
generates a few greedy tokens after a probe text, then scores the probe plus those
tokens as a prompt; the two log-probabilities of each token must agree within
:data:`TOLERANCE`. A server that fails is refused with the figures, never used.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Literal

from mike_sdk.backend import Likelihood, LikelihoodRequest
from mike_sdk.calls.failures import BadRequest, Transient
from mike_sdk.errors import ConfigError

__all__ = ["PROBE", "TOLERANCE", "LikelihoodSource", "PromptScorer"]

LikelihoodSource = Literal["off", "echo", "prompt_logprobs"]

#: The text each server continues for its check (any language model continues it).
PROBE = "The capital of France is"
PROBE_TOKENS = 4
#: Largest difference allowed between a token's log-probability as generated and as part
#: of the prompt: ``0.25 + 10%`` (a bfloat16 server's prefill and decode differ a little;
#: a wrong server differs by whole nats).
TOLERANCE = (0.25, 0.10)


def _agree(generated: float, as_prompt: float) -> bool:
    absolute, relative = TOLERANCE
    return abs(generated - as_prompt) <= absolute + relative * abs(generated)


def _root(base_url: str) -> str:
    """The server's root: vLLM serves ``/tokenize`` beside ``/v1``, not under it."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class PromptScorer:
    """Scores continuations through one OpenAI-compatible SDK client's server."""

    def __init__(self, model: str, source: LikelihoodSource) -> None:
        if source == "off":
            raise ConfigError("likelihood='off' scores nothing.")
        self.model = model
        self.source = source
        self._checks: dict[str, asyncio.Task[str | None]] = {}
        """Per server root, its check: why its prompt log-probabilities cannot be used, or
        None."""
        self._counts: dict[str, int] = {}

    async def score(self, client: Any, request: LikelihoodRequest) -> Likelihood:
        """The summed log-probability of ``request.continuation`` after its context."""
        if (problem := await self._verdict(client)) is not None:
            raise ConfigError(problem)
        n = await self._count(client, request.continuation)
        scored = await self._prompt_logprobs(client, request.context + request.continuation)
        n = min(n, len(scored) - 1)  # the first token has no prediction
        if n <= 0:
            return Likelihood(logprob=0.0, tokens=0)
        tail = [lp for _, lp in scored[-n:]]
        if any(lp is None or not math.isfinite(lp) for lp in tail):
            raise Transient("The server left prompt log-probabilities out; retrying.")
        return Likelihood(logprob=float(sum(lp for lp in tail if lp is not None)), tokens=n)

    async def _verdict(self, client: Any) -> str | None:
        """The check of this client's server, run once however many requests wait for it."""
        root = _root(str(client.base_url))
        check = self._checks.get(root)
        if check is not None and check.done() and not check.cancelled() \
                and check.exception() is None:
            return check.result()  # checked, under this event loop or an earlier one
        loop = asyncio.get_running_loop()
        if check is None or check.done() or check.get_loop() is not loop:
            check = self._checks[root] = loop.create_task(self._check(client))
        # Shielded: one waiter cancelled (its batch failed) does not cancel the others' check.
        return await asyncio.shield(check)

    def body(self, text: str) -> dict[str, Any]:
        """The completions body that returns the log-probability of every token of
        ``text`` (one token is generated: some servers refuse ``max_tokens: 0``)."""
        body: dict[str, Any] = {"model": self.model, "prompt": text, "max_tokens": 1,
                                "temperature": 0}
        if self.source == "echo":
            body.update(echo=True, logprobs=1)
        else:
            body["prompt_logprobs"] = 0
        return body

    async def _prompt_logprobs(self, client: Any, text: str) -> list[tuple[str | None,
                                                                          float | None]]:
        """(token text, log-probability) of each token of the prompt ``text``."""
        from openai.types import Completion

        response = await client.post("/completions", body=self.body(text), cast_to=Completion)
        choice = response.choices[0] if response.choices else None
        prompt_tokens = getattr(response.usage, "prompt_tokens", None)
        if choice is None or not prompt_tokens:
            raise Transient("The server answered with no choice or usage; retrying.")
        if self.source == "echo":
            logprobs = choice.logprobs
            if logprobs is None or logprobs.token_logprobs is None or logprobs.tokens is None:
                raise BadRequest("The server ignored echo with logprobs: use "
                                 "likelihood=prompt_logprobs, or --no-likelihood.")
            pairs = list(zip(logprobs.tokens, logprobs.token_logprobs, strict=False))
            return pairs[:prompt_tokens]
        entries = getattr(choice, "prompt_logprobs", None)
        if not isinstance(entries, list):
            raise BadRequest("The server ignored prompt_logprobs (a vLLM parameter): use "
                             "likelihood=echo, or --no-likelihood.")
        return [_prompt_entry(e) for e in entries]

    async def _count(self, client: Any, text: str) -> int:
        """Tokens of ``text`` on its own, without special tokens (vLLM's ``/tokenize``)."""
        if text in self._counts:
            return self._counts[text]
        reply = await client.post(f"{_root(str(client.base_url))}/tokenize", cast_to=object,
                                  body={"model": self.model, "prompt": text,
                                        "add_special_tokens": False})
        count = reply.get("count") if isinstance(reply, dict) else None
        if not isinstance(count, int):
            raise BadRequest("The server's /tokenize gave no token count (vLLM's "
                             "/tokenize is needed for the likelihood check).")
        self._counts[text] = count
        return count

    async def _check(self, client: Any) -> str | None:
        """None if this server's prompt log-probabilities agree with its generation
        log-probabilities on the probe, else why not (with the figures)."""
        from openai.types import Completion

        where = _root(str(client.base_url))
        body = {"model": self.model, "prompt": PROBE, "max_tokens": PROBE_TOKENS,
                "temperature": 0, "logprobs": 1}
        response = await client.post("/completions", body=body, cast_to=Completion)
        logprobs = response.choices[0].logprobs if response.choices else None
        if logprobs is None or not logprobs.tokens or logprobs.token_logprobs is None:
            return (f"The server at {where} returns no log-probabilities for generated "
                    "tokens, so its prompt log-probabilities cannot be checked: run with "
                    "--no-likelihood.")
        generated = list(zip(logprobs.tokens, logprobs.token_logprobs, strict=False))
        scored = await self._prompt_logprobs(client, PROBE + "".join(logprobs.tokens))
        tail = scored[-len(generated):]
        compared = 0
        for (token, as_generated), (prompt_token, as_prompt) in zip(generated, tail,
                                                                     strict=False):
            if prompt_token is not None and prompt_token != token:
                continue  # tokenised differently at the seam: not comparable
            compared += 1
            if as_generated is None or as_prompt is None or not _agree(as_generated,
                                                                        as_prompt):
                return (f"The server at {where} returns wrong prompt log-probabilities: "
                        f"after {PROBE!r} it generates {token!r} with log-probability "
                        f"{_show(as_generated)} but scores the same token in the prompt at "
                        f"{_show(as_prompt)} ({self.source}). llama.cpp's server is known "
                        "to do this. The likelihood check would be wrong: run with "
                        "--no-likelihood, or serve the model with vLLM.")
        if not compared:
            return (f"The server at {where} tokenises its own output differently when it "
                    "reads it back, so its prompt log-probabilities cannot be checked: "
                    "run with --no-likelihood.")
        return None


def _show(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f}"


def _prompt_entry(entry: Any) -> tuple[str | None, float | None]:
    """(token text, log-probability) of one ``prompt_logprobs`` entry (``None`` first).

    With ``prompt_logprobs: 0`` vLLM gives the prompt token only."""
    if entry is None:
        return None, None
    if not isinstance(entry, dict) or not entry:
        raise BadRequest("The server's prompt_logprobs have an unknown shape.")
    first: Any = next(iter(entry.values()))
    if not isinstance(first, dict):
        return None, float(first)
    return first.get("decoded_token"), float(first["logprob"])

