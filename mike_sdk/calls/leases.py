"""Leases: processes that share a response cache pay once for each request.

Before a client sends a request that is not in the cache, it takes the request's lease
in ``leases.sqlite`` beside the cache. A request whose lease another live holder has
is not sent: the client waits for its answer to appear in the cache. A holder is one
client of one process (host, pid, the process's start time, a random token); its
leases are renewed while it sends (a heartbeat every quarter of :data:`LEASE_S`) and
released as each answer is stored. A lease is free again once it has expired (a holder
that stopped renewing: hung, or on another host and gone) or at once when its process
is no longer alive on this host (killed, crashed: a reused pid is told apart by the
start time). A refused request (a 400) is not cached: its lease is marked refused with
the message, so that the clients waiting for it record the same error instead of
sending it again, while a later run takes the lease and sends it anew.

Cache hits never touch this file: only requests about to be sent take a lease.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> first, second = Leases(folder), Leases(folder)
>>> first.acquire(["k1", "k2"]), second.acquire(["k2", "k3"])
(['k1', 'k2'], ['k3'])
>>> first.refuse("k2", "Request refused (400)")
>>> second.refusals(["k2"]), second.acquire(["k2"])
({'k2': 'Request refused (400)'}, ['k2'])
>>> first.release(["k1"]); second.acquire(["k1"])
['k1']
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from mike_sdk.calls.cache import FileId, file_id, move_aside, storage_error, storage_problem

T = TypeVar("T")

__all__ = ["LEASE_S", "POLL_S", "Claim", "Leases", "process_alive"]

#: Seconds a lease lasts without being renewed.
LEASE_S = 60.0
#: Seconds between looks at requests another client sends: at first, at most.
POLL_S = (0.02, 1.0)
#: Keys per query (SQLite allows 32,766 parameters).
_QUERY_SIZE = 500
_SCHEMA = """CREATE TABLE IF NOT EXISTS lease (
    key TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    started TEXT, expires REAL NOT NULL, refused TEXT) WITHOUT ROWID"""
_HOST = socket.gethostname()


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (None: no such file)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:
        return None


def _started(pid: int) -> str | None:
    """When the process started (clock ticks since boot, Linux), None where unknown."""
    fields = _stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this host runs (a zombie does not; a process that
    started at another time than ``started`` is another process with a reused pid).

    >>> process_alive(os.getpid(), _started(os.getpid())), process_alive(2**22 + 1)
    (True, False)
    """
    if os.name == "nt":
        return True  # os.kill would end the process there: leases expire instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return False
    fields = _stat(pid)
    if fields is None:
        return True  # no /proc: the signal said it exists
    if fields[0] in ("Z", "X"):
        return False
    return started is None or len(fields) <= 19 or fields[19] == started


class Leases:
    """The leases of one holder (one client) on the requests of one cache folder."""

    def __init__(self, directory: str | Path, *, lease_s: float = LEASE_S) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "leases.sqlite"
        self.lease_s = lease_s
        """Seconds a lease lasts unless renewed (:meth:`renew`)."""
        self.token = secrets.token_hex(6)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = -1
        self._seen: FileId = None
        self._started: str | None = None
        self.taken_over = 0
        """Leases this holder took from expired or dead holders."""

    def __repr__(self) -> str:
        return f"Leases({str(self.directory)!r}, holder={self.holder!r})"

    @property
    def holder(self) -> str:
        """``host:pid:token``: who holds a lease (the pid of now, also after a fork)."""
        return f"{_HOST}:{os.getpid()}:{self.token}"

    # -- the database ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None and self._pid == os.getpid():
            return self._db
        self._db, self._pid = None, os.getpid()  # a forked child opens its own connection
        self._started = _started(self._pid)
        self._seen = file_id(self.path)
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                             check_same_thread=False)
        try:
            # Switching a new file to WAL while another process does the same can answer
            # "database is locked" at once (the busy timeout does not cover it): wait.
            for wait in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 0.0):
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or not wait:
                        raise
                    time.sleep(wait)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db, self._seen = db, file_id(self.path)
        return db

    def _run(self, work: Callable[[sqlite3.Connection], T], write: bool = True) -> T:
        """``work`` in one transaction; a damaged file is moved aside and ``work`` done
        again in a fresh one; an unwritable folder is a one-line error."""
        with self._lock:
            for attempt in (0, 1):
                try:
                    db = self._connect()
                    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    try:
                        result = work(db)
                        db.execute("COMMIT")
                        return result
                    except BaseException:
                        with suppress(sqlite3.Error):
                            if db.in_transaction:
                                db.execute("ROLLBACK")
                        raise
                except (sqlite3.Error, OSError) as exc:
                    if attempt == 0 and storage_problem(exc) == "corrupt":
                        self._close()
                        move_aside(self.path, self._seen, exc,
                                   "it only held the leases of requests in flight.")
                        continue
                    error = storage_error(self.directory, exc)
                    if error is not None:
                        raise error from exc
                    raise
            raise AssertionError("unreachable")

    # -- leases ----------------------------------------------------------------------------

    def acquire(self, keys: Iterable[str]) -> list[str]:
        """The keys among ``keys`` this holder now leases: those nobody held, or held by
        an expired or dead holder, or marked refused; not those another live holder (or
        this one, for another call) has."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return []

        def take(db: sqlite3.Connection) -> list[str]:
            now, holder, mine = time.time(), self.holder, []
            alive: dict[tuple[int, str | None], bool] = {}
            for part in _parts(wanted):
                rows = {row[0]: row[1:] for row in db.execute(
                    "SELECT key, holder, host, pid, started, expires, refused FROM lease "
                    f"WHERE key IN ({_marks(part)})", part)}
                for key in part:
                    row = rows.get(key)
                    if row is not None and row[5] is None and row[4] >= now:
                        owner, host, pid, started = row[:4]
                        if owner == holder or host != _HOST:
                            continue  # held (by this holder for another call, or elsewhere)
                        if (pid, started) not in alive:
                            alive[pid, started] = process_alive(pid, started)
                        if alive[pid, started]:
                            continue
                    mine.append(key)
                    if row is not None and row[5] is None:
                        self.taken_over += 1
            db.executemany(
                "INSERT OR REPLACE INTO lease VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [(key, holder, _HOST, os.getpid(), self._started, now + self.lease_s)
                 for key in mine])
            return mine

        return self._run(take)

    def release(self, keys: Iterable[str]) -> None:
        """Give back this holder's leases on ``keys`` (answered, or not to be sent)."""
        wanted = list(dict.fromkeys(keys))

        def give(db: sqlite3.Connection) -> None:
            for part in _parts(wanted):
                db.execute("DELETE FROM lease WHERE refused IS NULL AND holder = ? AND key IN "
                           f"({_marks(part)})", [self.holder, *part])

        if wanted:
            self._run(give)

    def refuse(self, key: str, message: str) -> None:
        """Mark this holder's lease on ``key`` refused, with the refusal's message: who
        waits for the answer records the error instead (left alone if another holder
        took the lease meanwhile)."""
        row = (key, self.holder, _HOST, os.getpid(), self._started,
               time.time() + self.lease_s, message)
        self._run(lambda db: db.execute(
            "INSERT INTO lease VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE "
            "SET refused = excluded.refused, expires = excluded.expires "
            "WHERE lease.holder = excluded.holder", row))

    def refusals(self, keys: Iterable[str]) -> dict[str, str]:
        """The refusal messages recorded for ``keys`` (keys not refused are left out)."""
        wanted = list(dict.fromkeys(keys))

        def read(db: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for part in _parts(wanted):
                found.update(db.execute(
                    "SELECT key, refused FROM lease WHERE refused IS NOT NULL AND key IN "
                    f"({_marks(part)})", part).fetchall())
            return found

        return self._run(read, write=False) if wanted else {}

    def renew(self) -> None:
        """Extend every lease this holder has by :attr:`lease_s` (the heartbeat); refusal
        marks older than a lease are cleared on the way."""
        def extend(db: sqlite3.Connection) -> None:
            now = time.time()
            db.execute("UPDATE lease SET expires = ? WHERE holder = ? AND refused IS NULL",
                       (now + self.lease_s, self.holder))
            db.execute("DELETE FROM lease WHERE refused IS NOT NULL AND expires < ?", (now,))

        self._run(extend)

    def _close(self) -> None:
        """Close the connection; the caller holds the lock."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def close(self) -> None:
        """Close the connection (leases stay: release them first)."""
        with self._lock:
            self._close()


class Claim:
    """The leases of one call of a client: taken as its batches get a slot, renewed while
    it sends, given back as its answers are stored; and the requests it waits for while
    another client sends them.

    ``lookup`` reads the cache; ``found`` takes the answers read there for this call.
    """

    def __init__(self, leases: Leases, lookup: Callable[[Iterable[str]], Mapping[str, Any]],
                 found: Callable[[Mapping[str, Any]], None]) -> None:
        self.leases = leases
        self.lookup = lookup
        self.found = found
        self.held: set[str] = set()
        """Keys this call leases now."""
        self.waiting: dict[str, None] = {}
        """Keys another client (or another call of this one) is sending (in order)."""
        self._delay = POLL_S[0]
        self._renew_at = time.monotonic() + leases.lease_s / 4

    def take(self, keys: list[str]) -> list[str]:
        """The keys to send now: those whose lease this call took and whose answer is
        still not in the cache (an answer stored since the first look is ``found``);
        the others wait."""
        mine = self.leases.acquire(keys)
        if len(mine) < len(keys):
            taken = set(mine)
            self.waiting.update((k, None) for k in keys if k not in taken)
        if not mine:
            return []
        for key in mine:
            self.waiting.pop(key, None)
        self.held.update(mine)
        stored = self.lookup(mine)  # the last holder stored it, then gave the lease back
        if stored:
            self.release(stored)
            self.found(stored)
        return [k for k in mine if k not in stored]

    def release(self, keys: Iterable[str]) -> None:
        """Give back the leases of requests answered (and stored)."""
        keys = list(keys)
        self.leases.release(keys)
        self.held.difference_update(keys)

    def refused(self, key: str, message: str) -> None:
        """Mark a request refused: who waits for it records the error."""
        self.leases.refuse(key, message)
        self.held.discard(key)

    def pause(self) -> float:
        """Seconds until the next :meth:`look` (shorter after one that found news)."""
        return self._delay

    def look(self, record: Callable[[str, str], None]) -> list[str]:
        """Renew the leases held if due; then one look at the requests waited for: the
        answers stored are ``found``, the refusals recorded are passed to ``record``, and
        the keys whose lease was given back unanswered or left by a dead holder are
        taken and returned, to be sent by this call."""
        if self.held and time.monotonic() >= self._renew_at:
            self.leases.renew()
            self._renew_at = time.monotonic() + self.leases.lease_s / 4
        news: list[str] = []
        stored: Mapping[str, Any] = {}
        refusals: dict[str, str] = {}
        if self.waiting:
            stored = self.lookup(self.waiting)
            for key in stored:
                del self.waiting[key]
            self.found(stored)
            refusals = self.leases.refusals(self.waiting) if self.waiting else {}
            for key, message in refusals.items():
                del self.waiting[key]
                record(key, message)
            news = self.take(list(self.waiting)) if self.waiting else []
        progress = bool(stored or refusals or news)
        self._delay = POLL_S[0] if progress else min(self._delay * 1.5, POLL_S[1])
        return news

    def close(self) -> None:
        """Give back every lease still held (requests not sent, or refused)."""
        if self.held:
            self.leases.release(self.held)
            self.held.clear()


def _parts(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _QUERY_SIZE):
        yield keys[start:start + _QUERY_SIZE]


def _marks(part: list[str]) -> str:
    return ",".join("?" * len(part))
