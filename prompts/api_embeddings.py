"""Embeddings from OpenAI's embeddings API (or an OpenAI-compatible server), for closed-model
users' edit memories.

Each text's vector is kept in the response cache (keyed by the embedder's name and the
text, never the key), so a text is paid for once; requests wait for the rate limiter
(``rpm``, ``tpm``) and each response's tokens are priced with the price table
(``cost_usd`` sums what this object paid; None while the model has no price). SDK
failures become the call path's failure classes, without the key.

    from mike_sdk.prompts.api_embeddings import OpenAIEmbedder
    memory = EditMemory("edits.sqlite", embedder=OpenAIEmbedder("text-embedding-3-small"))

By name (``--embedder``, ``--memory-embedder``): ``openai-text-embedding-3-small``, an
entry point in the ``mike_sdk.embedders`` group, with ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.failures import translate
from mike_sdk.calls.limits import CallGuard, Limits
from mike_sdk.calls.pricing import PriceTable
from mike_sdk.calls.ratelimit import RateLimiter
from mike_sdk.errors import ConfigError

if TYPE_CHECKING:
    from .embeddings import Vectors

DEFAULT_MODEL = "text-embedding-3-small"


class OpenAIEmbedder:
    """OpenAI embeddings through the call path's cache, rate limiter and prices."""

    def __init__(self, model: str = DEFAULT_MODEL, *, base_url: str | None = None,
                 api_key: str | None = None, cache: ResponseCache | None = None,
                 rpm: float | None = None, tpm: float | None = None,
                 prices: PriceTable | None = None, batch_size: int = 256) -> None:
        host = urlparse(base_url).netloc.rpartition("@")[2] if base_url else ""
        #: The vectors' identity: the model, and the server when it is not OpenAI's.
        self.name = f"openai:{model}" + (f"@{host}" if host else "")
        self.model = model
        self.base_url = base_url
        self._key = api_key or os.environ.get("OPENAI_API_KEY")
        self.cache = cache if cache is not None else ResponseCache()
        self.limiter = RateLimiter(rpm=rpm, tpm=tpm)
        # Priced where every answer is (CallGuard); its limits are this object's own.
        self.guard = CallGuard(Limits(), model)
        if prices is not None:
            self.guard.prices = prices
        self.batch_size = batch_size
        self.requests = 0
        """Requests sent by this object."""
        self.cost_usd: float | None = 0.0
        """What they cost (None once a response came without a known price)."""
        self._client: Any = None

    def __repr__(self) -> str:  # the key stays out
        return f"OpenAIEmbedder({self.model!r}, base_url={self.base_url!r})"

    def _sdk(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError:
                raise ConfigError("The OpenAI embedder needs the `api` extra: "
                                  "pip install 'mike-sdk[api]'.") from None
            if not self._key:
                raise ConfigError("The OpenAI embedder needs a key: set OPENAI_API_KEY "
                                  "(or pass api_key=...).")
            self._client = openai.OpenAI(api_key=self._key, base_url=self.base_url)
        return self._client

    def _key_of(self, text: str) -> str:
        return hashlib.sha256(f"embedding\0{self.name}\0{text}".encode()).hexdigest()

    def encode(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        keys = [self._key_of(t) for t in texts]
        found = {k: v["vector"] for k, v in self.cache.get_many(set(keys)).items()}
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True)
                                  if k not in found))
        for start in range(0, len(todo), self.batch_size):
            part = todo[start:start + self.batch_size]
            for text, vector in zip(part, self._request(part), strict=True):
                found[self._key_of(text)] = vector
        matrix = np.asarray([found[k] for k in keys], dtype=np.float32).reshape(len(keys), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return np.asarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)

    def _request(self, texts: list[str]) -> list[list[float]]:
        import openai

        estimate = sum(len(t) for t in texts) // 4 + len(texts)
        asyncio.run(self.limiter.acquire(estimate))
        try:
            response = self._sdk().embeddings.create(model=self.model, input=texts)
        except openai.OpenAIError as exc:
            failure = translate(exc, openai, key_env="OPENAI_API_KEY",
                                secrets=[self._key or ""], where="the embeddings API")
            raise (failure or exc) from None
        self.requests += 1
        tokens = getattr(response.usage, "prompt_tokens", None)
        self.limiter.settle(estimate, tokens)
        cost = self.guard.tokens_cost(tokens, 0)
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost
        vectors = [list(map(float, d.embedding)) for d in sorted(response.data,
                                                                  key=lambda d: d.index)]
        self.cache.put_many((self._key_of(t), {"vector": v, "model": self.model})
                            for t, v in zip(texts, vectors, strict=True))
        return vectors
