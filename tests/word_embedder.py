"""A tiny deterministic embedder for the memory's mechanics: hashed words, normalised.

Real embedders are tested where behaviour depends on them (cross-lingual retrieval);
this one makes similarity predictable: texts sharing words are close.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from mike_sdk.prompts.embeddings import EMBEDDERS

DIM = 8192


@EMBEDDERS.register("test-words")  # for `mike --include tests/word_embedder.py serve ...`
class WordEmbedder:
    """Bag of hashed lowercase words in 8192 dimensions (``calls`` counts encode calls)."""

    def __init__(self, name: str = "test-words", dim: int = DIM) -> None:
        self.name = name
        self.dim = dim
        self.threshold = 0.3
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.blake2b(word.encode()).hexdigest(), 16) % self.dim] += 1
            out[row] /= max(float(np.linalg.norm(out[row])), 1e-12)
        return out
