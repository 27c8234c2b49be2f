"""One batch being packed: its request lines on disk, its keys and estimates in memory.

A full batch is up to 50,000 lines and 200 MB (OpenAI) or 100,000 and 256 MB
(Anthropic): held as bytes, then joined and handed to the SDK, it would take several
times that. So the lines go to a temporary file as they are packed, and the provider
uploads from the file (``bench/bench_batch_run.py`` measures a whole run's memory).
"""

from __future__ import annotations

import tempfile
from typing import IO

__all__ = ["PackedBatch"]


class PackedBatch:
    """The lines of one batch in a temporary file (deleted at :meth:`close`)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        """The cache keys of its requests, in line order."""
        self.estimates: list[float | None] = []
        """Each request's upper-bound USD at batch prices (None: no price)."""
        self._ends: list[int] = []
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="mike-batch-")  # noqa: SIM115

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def size(self) -> int:
        """Bytes of its lines."""
        return self._ends[-1] if self._ends else 0

    def add(self, key: str, line: bytes, estimate: float | None) -> None:
        """Append one request's line."""
        self._file.write(line)
        self.keys.append(key)
        self.estimates.append(estimate)
        self._ends.append(self.size + len(line))

    def cut(self, count: int) -> None:
        """Keep only the first ``count`` requests."""
        del self.keys[count:], self.estimates[count:], self._ends[count:]
        self._file.truncate(self.size)
        self._file.seek(self.size)

    def data(self) -> IO[bytes]:
        """The lines, from the start (read it to the end; ask again to read it again)."""
        self._file.flush()
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        """Delete the file."""
        self._file.close()
