"""The on-disk response cache: no backend call is ever paid for twice.

Keys hash the canonical request: backend kind, model identity, the call type
and everything sent (prompt or messages, generation parameters). Never a secret,
never the strategy's name: two strategies that render the same prompt share the
answer. Values are JSON. diskcache (SQLite) makes it safe for several processes
to share one folder (:mod:`mike_sdk.calls.leases` makes them pay once between them).

Each value is stored with a checksum of its key and its JSON (:func:`sealed`): a value
edited on disk, or moved to another key, no longer matches and is asked (and paid for)
again, with a warning, rather than used. Values written before checksums existed are
read as they are.

A damaged ``cache.db`` is moved aside with a warning and a fresh cache started; a
folder that cannot be written (read-only, a full disk) is a one-line
:class:`~mike_sdk.errors.ConfigError` that names the folder and the fix.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import diskcache
from pydantic import BaseModel
from pydantic_core import from_json, to_json

from mike_sdk.backend import Generation, Identity
from mike_sdk.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

CACHE_ENV = "MIKE_CACHE_DIR"
#: Keys per look-up query (SQLite allows 32,766 parameters; small queries stay fast).
_QUERY_SIZE = 500
KEY_VERSION = 1
#: Marks a stored value that starts with its checksum (older values start with ``{``).
SEAL = b"S1"
_DIGEST = 16


def _digest(key: str, raw: bytes) -> bytes:
    return hashlib.sha256(key.encode() + b"\0" + raw).hexdigest()[:_DIGEST].encode()


def sealed(key: str, value: dict[str, Any]) -> bytes:
    """The bytes stored for ``value`` under ``key``: :data:`SEAL`, a checksum of the key
    and the JSON, then the JSON."""
    raw = to_json(value)
    return SEAL + _digest(key, raw) + raw


def unsealed(key: str, stored: bytes) -> dict[str, Any] | None:
    """The value stored under ``key``, or None when it does not match its checksum.

    >>> unsealed("k", sealed("k", {"text": "Paris"}))
    {'text': 'Paris'}
    >>> unsealed("k", sealed("k", {"text": "Paris"}).replace(b"Paris", b"Rome!")) is None
    True
    """
    if not stored.startswith(SEAL):
        return dict(from_json(stored))  # written before checksums
    start = len(SEAL) + _DIGEST
    raw = stored[start:]
    if stored[len(SEAL):start] != _digest(key, raw):
        return None
    return dict(from_json(raw))


def default_cache_root() -> Path:
    """``$MIKE_CACHE_DIR`` or the user cache folder of mike-sdk."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mike-sdk"))


def request_key(identity: Identity, call: str, request: BaseModel) -> str:
    """The cache key of one request to one model.

    >>> from mike_sdk.backend import GenerationRequest
    >>> a = request_key(Identity(kind="hf", model="m"), "generate", GenerationRequest(prompt="x"))
    >>> len(a), a == request_key(Identity(kind="hf", model="m"), "generate",
    ...                          GenerationRequest(prompt="x"))
    (64, True)
    """
    # The bytes of to_json({"v", "backend", "call", "request": model_dump(json, no None)}),
    # built without the intermediate dicts: a re-run keys about 700,000 requests.
    blob = (_key_head(identity, call)
            + request.__pydantic_serializer__.to_json(request, exclude_none=True) + b"}")
    return hashlib.sha256(blob).hexdigest()


@lru_cache(maxsize=64)
def _key_head(identity: Identity, call: str) -> bytes:
    """Everything of a key's JSON before the request's own (canonical: the models fix
    the field order). Identities without settings keep the keys they had before the
    field existed."""
    backend = identity if identity.settings is not None else identity.model_dump(
        exclude={"settings"})
    closed = to_json({"v": KEY_VERSION, "backend": backend, "call": call, "request": 0})
    return closed[:-len(b"0}")]


def cacheable(generation: Generation) -> bool:
    """Errors and empty failures are never cached, so a re-run retries them."""
    if generation.finish_reason == "error":
        return False
    return not (generation.text == "" and generation.finish_reason == "length")


Problem = Literal["corrupt", "read-only", "full", "in the way"]

_ERRNO: dict[int, Problem] = {errno.EROFS: "read-only", errno.EACCES: "read-only",
                              errno.EPERM: "read-only", errno.ENOSPC: "full",
                              errno.EDQUOT: "full", errno.ENOTDIR: "in the way",
                              errno.EEXIST: "in the way"}


def storage_problem(exc: BaseException) -> Problem | None:
    """What a failure to read or write a cache file says about the file or its folder
    (None: nothing this module handles, such as a locked database).

    >>> storage_problem(sqlite3.DatabaseError("file is not a database"))
    'corrupt'
    >>> storage_problem(sqlite3.OperationalError("database or disk is full"))
    'full'
    >>> storage_problem(OSError(errno.EROFS, "Read-only file system"))
    'read-only'
    >>> storage_problem(sqlite3.OperationalError("database is locked")) is None
    True
    """
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc).lower()
        if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text \
                or "not a database" in text:
            return "corrupt"
        if name == "SQLITE_FULL" or "disk is full" in text:
            return "full"
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) \
                or "readonly" in text or "unable to open" in text:
            return "read-only"
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        return _ERRNO.get(exc.errno)
    return None


def storage_error(folder: Path, exc: BaseException) -> ConfigError | None:
    """The one-line error for a cache folder that cannot be written (None: another
    failure, left as it is).

    >>> print(storage_error(Path("/c"), sqlite3.OperationalError("database or disk is full")))
    The cache folder /c is on a full disk (database or disk is full): free space there, \
or give another folder with --cache-dir (or $MIKE_CACHE_DIR).
    """
    problem = storage_problem(exc)
    detail = " ".join(str(exc).split()) or type(exc).__name__
    fix = "or give another folder with --cache-dir (or $MIKE_CACHE_DIR)."
    if problem == "full":
        return ConfigError(f"The cache folder {folder} is on a full disk ({detail}): "
                           f"free space there, {fix}")
    if problem == "read-only":
        return ConfigError(f"The cache folder {folder} cannot be written ({detail}): "
                           f"make it writable, {fix}")
    if problem == "in the way":
        return ConfigError(f"The cache folder {folder} cannot be created ({detail}): a "
                           f"file is in the way; move it, {fix}")
    return None


FileId = tuple[int, int] | None


def file_id(path: Path) -> FileId:
    """``(device, inode)`` of a file, None if absent: tells whether it was replaced."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def move_aside(path: Path, seen: FileId, exc: BaseException, lost: str) -> None:
    """Rename a damaged SQLite file (with its ``-wal`` and ``-shm``) to
    ``NAME.damaged-YYYYmmdd-HHMMSS`` and warn, unless another process already did
    (the file is no longer the one that was ``seen``)."""
    if seen is None or file_id(path) != seen:
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    number = 1
    while target.exists():
        target, number = path.with_name(f"{path.name}.damaged-{stamp}-{number}"), number + 1
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    log.warning("%s is damaged (%s): moved it aside to %s and started a fresh one; %s",
                path, " ".join(str(exc).split()), target.name, lost)


#: SQLite page cache of this process's connection, in KiB (diskcache's default: 32 MiB).
PAGE_CACHE_KIB = 4096


def _lean(cache: diskcache.Cache) -> None:
    """Bound the memory this process's connection keeps of the file. diskcache maps the
    first 64 MiB of ``cache.db`` and caches 32 MiB of pages: together a fifth of a cached
    re-run's peak memory, for look-ups that pay one B-tree walk each either way. Set on the
    connection only: diskcache's stored settings (other processes) are left as they are."""
    con = cache._con
    con.execute("PRAGMA mmap_size = 0")
    con.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")


class ResponseCache:
    """Backend responses by request key, in a diskcache folder."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_root() / "responses"
        self.file = self.directory / "cache.db"
        self._seen: FileId = None
        self._cache = self._open()
        self.hits = 0
        self.misses = 0
        self.tampered = 0
        """Values found not to match their checksum (treated as absent)."""

    def _open(self) -> diskcache.Cache:
        for _ in range(3):  # a damaged file is moved aside and the cache opened again
            seen = None
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                seen = file_id(self.file)
                # No eviction: an evicted answer would be paid for again.
                cache = diskcache.Cache(str(self.directory), size_limit=2**50,
                                        eviction_policy="none")
                _lean(cache)
                self._seen = file_id(self.file)
                return cache
            except (sqlite3.Error, OSError) as exc:
                self._trouble(exc, seen)
        raise ConfigError(f"The response cache {self.file} is damaged again each time it "
                          "is opened: give another folder with --cache-dir.")

    def _trouble(self, exc: BaseException, seen: FileId) -> None:
        """Move a damaged file aside (the caller opens a fresh one), else raise the
        one-line error of an unwritable folder, else let the failure through."""
        if storage_problem(exc) == "corrupt":
            move_aside(self.file, seen, exc, "the answers stored in it will be asked "
                       "(and paid for) again.")
            return
        error = storage_error(self.directory, exc)
        if error is not None:
            raise error from exc
        raise exc

    def _guarded(self, work: Callable[[], T]) -> T:
        """``work()``; a cache found damaged on the way is replaced and ``work`` done
        again on the fresh one."""
        try:
            return work()
        except (sqlite3.Error, OSError) as exc:
            self._trouble(exc, self._seen)
        self._cache.close()
        self._cache = self._open()
        return work()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.directory)!r})"

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached values among ``keys`` (absent keys are left out)."""
        wanted = list(dict.fromkeys(keys))
        found = self._guarded(lambda: self._read(wanted))
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def _read(self, wanted: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        tampered = []
        for start in range(0, len(wanted), _QUERY_SIZE):
            for key, raw in self._select(wanted[start:start + _QUERY_SIZE]):
                if raw is None:
                    continue
                value = unsealed(key, raw)
                if value is None:
                    tampered.append(key)
                else:
                    found[key] = value
        if tampered:
            self.tampered += len(tampered)
            log.warning("%d answers in %s do not match their checksum (edited on disk?): "
                        "they are asked again instead of used (first key %s).",
                        len(tampered), self.file, tampered[0][:16])
        return found

    def _select(self, keys: list[str]) -> Iterator[tuple[str, bytes | None]]:
        """``(key, stored bytes)`` of the keys present, in one query.

        A re-run looks up half a million keys; one query per key was most of its time.
        This reads diskcache's table directly (its layout is stable across 5.x), and
        leaves anything it does not recognise (a value kept in a file, an unknown
        layout) to diskcache's own ``get``.
        """
        marks = ",".join("?" * len(keys))
        try:
            rows = self._cache._sql(
                f"SELECT key, mode, value FROM Cache WHERE raw = 1 AND key IN ({marks})",
                keys).fetchall()
        except (AttributeError, sqlite3.Error) as exc:
            if storage_problem(exc) is not None:
                raise
            rows = [(key, None, None) for key in keys]
        for key, mode, value in rows:
            if mode == diskcache.core.MODE_RAW and isinstance(value, bytes):
                yield key, value
            else:
                yield key, self._cache.get(key)

    def put_many(self, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Store several values in one transaction."""
        encoded = [(key, sealed(key, value)) for key, value in entries]

        def write() -> None:
            with self._cache.transact():
                for key, raw in encoded:
                    self._cache.set(key, raw)

        self._guarded(write)

    def __len__(self) -> int:
        return self._guarded(lambda: len(self._cache))

    def close(self) -> None:
        """Close the SQLite connections."""
        self._cache.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
