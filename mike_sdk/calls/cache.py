"""The on-disk response cache: no backend call is ever paid for twice.

Keys hash the canonical request: backend kind, model identity, the call type
and everything sent (prompt or messages, generation parameters). Never a secret,
never the strategy's name: two strategies that render the same prompt share the
answer. Values are JSON. diskcache (SQLite) makes it safe for several processes
to share one folder.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import diskcache
from pydantic import BaseModel
from pydantic_core import from_json, to_json

from mike_sdk.backend import Generation, Identity

CACHE_ENV = "MIKE_CACHE_DIR"
#: Keys per look-up query (SQLite allows 32,766 parameters; small queries stay fast).
_QUERY_SIZE = 500
KEY_VERSION = 1


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
    # Field order is fixed by the models, so this serialisation is canonical.
    # Identities without settings keep the keys they had before the field existed.
    backend = identity if identity.settings is not None else identity.model_dump(
        exclude={"settings"})
    blob = to_json({"v": KEY_VERSION, "backend": backend, "call": call,
                    "request": request.model_dump(mode="json", exclude_none=True)})
    return hashlib.sha256(blob).hexdigest()


def cacheable(generation: Generation) -> bool:
    """Errors and empty failures are never cached, so a re-run retries them."""
    if generation.finish_reason == "error":
        return False
    return not (generation.text == "" and generation.finish_reason == "length")


class ResponseCache:
    """Backend responses by request key, in a diskcache folder."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_root() / "responses"
        self.directory.mkdir(parents=True, exist_ok=True)
        # No eviction: an evicted answer would be paid for again.
        self._cache = diskcache.Cache(str(self.directory), size_limit=2**50,
                                      eviction_policy="none")
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.directory)!r})"

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached values among ``keys`` (absent keys are left out)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), _QUERY_SIZE):
            part = wanted[start:start + _QUERY_SIZE]
            for key, raw in self._select(part):
                if raw is not None:
                    found[key] = from_json(raw)
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
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
        except (AttributeError, sqlite3.Error):
            rows = [(key, None, None) for key in keys]
        for key, mode, value in rows:
            if mode == diskcache.core.MODE_RAW and isinstance(value, bytes):
                yield key, value
            else:
                yield key, self._cache.get(key)

    def put_many(self, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Store several values in one transaction."""
        with self._cache.transact():
            for key, value in entries:
                self._cache.set(key, to_json(value))

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        """Close the SQLite connections."""
        self._cache.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
