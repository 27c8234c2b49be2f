"""Exact nearest-neighbour search over L2-normalised vectors held in memory.

A dot product of normalised vectors is their cosine similarity, so the top ``k`` of
one matrix product is exact. Rows live in a buffer that doubles when full; a deleted
row is replaced by the last one, so adding and deleting cost one row each and the
matrix stays dense (bench/memory_retrieval.py measures search at 1k to 100k edits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]


class VectorIndex:
    """Vectors by id; :meth:`top_k` gives the most similar ids to each query, best first."""

    def __init__(self, dim: int | None = None) -> None:
        import numpy as np

        self.dim = dim
        self._rows: Vectors = np.zeros((0, dim or 0), dtype=np.float32)
        self._ids: list[str] = []
        self._position: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._position

    @property
    def nbytes(self) -> int:
        """Bytes held by the vector buffer."""
        return int(self._rows.nbytes)

    def put(self, ids: Sequence[str], vectors: Vectors) -> None:
        """Add or replace the vectors of ``ids`` (one row each)."""
        import numpy as np

        if not ids:
            return
        if self.dim is None:
            self.dim = int(vectors.shape[1])
            self._rows = np.zeros((0, self.dim), dtype=np.float32)
        needed = len(self._ids) + sum(1 for i in ids if i not in self._position)
        if needed > self._rows.shape[0]:
            grown = np.zeros((max(needed, 2 * self._rows.shape[0], 64), self.dim),
                             dtype=np.float32)
            grown[: len(self._ids)] = self._rows[: len(self._ids)]
            self._rows = grown
        for key, vector in zip(ids, vectors, strict=True):
            row = self._position.get(key)
            if row is None:
                row = len(self._ids)
                self._ids.append(key)
                self._position[key] = row
            self._rows[row] = vector

    def remove(self, key: str) -> None:
        """Drop ``key``'s vector (nothing if absent): the last row takes its place."""
        row = self._position.pop(key, None)
        if row is None:
            return
        last = len(self._ids) - 1
        if row != last:
            moved = self._ids[last]
            self._rows[row] = self._rows[last]
            self._ids[row] = moved
            self._position[moved] = row
        self._ids.pop()

    def top_k(self, queries: Vectors, k: int) -> list[list[tuple[str, float]]]:
        """For each query row, up to ``k`` ``(id, cosine)`` pairs, most similar first
        (ties in insertion order)."""
        import numpy as np

        count = len(self._ids)
        if count == 0 or k < 1:
            return [[] for _ in range(len(queries))]
        scores = queries @ self._rows[:count].T
        k = min(k, count)
        out = []
        for row in scores:
            best = np.argpartition(-row, k - 1)[:k] if k < count else np.arange(count)
            best = best[np.lexsort((best, -row[best]))]
            out.append([(self._ids[i], float(row[i])) for i in best])
        return out
