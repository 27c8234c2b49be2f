"""The language identifier's verdicts on answers, kept on disk beside the response cache.

Identifying a short answer costs the ``lingua`` identifier about a millisecond, and a
whole configuration has hundreds of thousands of them: enough to make a fully cached
re-run several times slower than reading the cache. The verdict is a pure function of
the identifier's version, the languages it chooses among and the text, so it is
computed once and looked up afterwards, a few hundred at a time.

One SQLite file (WAL mode) is shared safely by several processes, like the response cache.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

#: A verdict: the most likely language code and its relative confidence, or None when
#: the identifier found nothing.
Verdict = tuple[str, float] | None

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    detector TEXT NOT NULL,
    text TEXT NOT NULL,
    code TEXT,
    confidence REAL,
    PRIMARY KEY (detector, text)
) WITHOUT ROWID
"""
#: SQLite's default limit on bound parameters is 999 in old builds.
_BATCH = 900


def detector_key(version: str, codes: Iterable[str]) -> str:
    """A short name for one identifier: its version and the languages it chooses among.

    >>> detector_key("2.1.1", ["en", "de"]) == detector_key("2.1.1", ["de", "en"])
    True
    """
    blob = f"{version}|{','.join(sorted(codes))}".encode()
    return hashlib.sha256(blob).hexdigest()[:24]


class IdentificationCache:
    """Verdicts by (detector, text) in ``path`` (a SQLite file, created if absent)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: writes are grouped in explicit transactions below.
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"IdentificationCache({str(self.path)!r})"

    def get_many(self, detector: str, texts: Sequence[str]) -> dict[str, Verdict]:
        """The stored verdicts among ``texts`` (texts never identified are left out)."""
        found: dict[str, Verdict] = {}
        for start in range(0, len(texts), _BATCH):
            batch = texts[start:start + _BATCH]
            marks = ",".join("?" * len(batch))  # placeholders only: the texts are bound
            rows = self._db.execute(
                "SELECT text, code, confidence FROM verdicts "
                f"WHERE detector = ? AND text IN ({marks})", (detector, *batch))
            for text, code, confidence in rows:
                found[text] = None if code is None else (code, confidence)
        return found

    def put_many(self, detector: str, verdicts: dict[str, Verdict]) -> None:
        """Store verdicts in one transaction (a verdict already stored is kept)."""
        if not verdicts:
            return
        rows = [(detector, text, None, None) if v is None else (detector, text, v[0], v[1])
                for text, v in verdicts.items()]
        with self._db:  # one transaction: commits, or rolls back on error
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        count: int = self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
        return count

    def close(self) -> None:
        """Close the SQLite connection."""
        self._db.close()
