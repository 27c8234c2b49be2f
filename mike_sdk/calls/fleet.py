"""Several servers that serve the same model, used as one: least-loaded routing,
failover and recovery.

A backend given several base URLs (``--base-url`` repeated, or a fleet file) sends each
request through :meth:`Fleet.send`. The request goes to the healthy server with the
fewest requests in flight for its capacity. A server that refuses or drops the
connection is taken out at once, one that fails :data:`DOWN_AFTER` times in a row with
a server error or a timeout too; the request moves to another server straight away
(re-sending is routing here, not a retry: the shared retry layer only sees a failure
when no server is left to try). A server taken out is tried again after a pause that
doubles each time it fails again (:data:`PAUSE_S` up to :data:`MAX_PAUSE_S`), with one
request at a time until it answers.

The fleet never pays twice for an answer: the response cache sits above it, so a
request answered by any server is stored once and never sent again.

>>> import asyncio
>>> fleet = Fleet([Member("http://a", 1, "A"), Member("http://b", 1, "B")])
>>> async def ask(target: str) -> str:
...     return f"answered by {target}"
>>> asyncio.run(fleet.send(ask))
'answered by A'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mike_sdk.calls.failures import (
    AuthFailed,
    CallFailed,
    ModelNotFound,
    RateLimited,
    Transient,
    Unreachable,
    without_credentials,
)
from mike_sdk.errors import ConfigError, problems
from mike_sdk.overrides import read_override

__all__ = ["DOWN_AFTER", "MAX_PAUSE_S", "PAUSE_S", "Fleet", "FleetFile", "FleetServer",
           "Member", "read_fleet", "require_scheme"]

log = logging.getLogger("mike_sdk.fleet")

T = TypeVar("T")
R = TypeVar("R")

#: Server errors or timeouts in a row that take a server out.
DOWN_AFTER = 3
#: First pause before a server taken out is tried again (seconds); doubles each time.
PAUSE_S = 2.0
#: Longest such pause.
MAX_PAUSE_S = 60.0


class FleetServer(BaseModel):
    """One server of a fleet file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1)
    """Its API root, e.g. ``http://gpu1:8000/v1``."""
    concurrency: int | None = Field(default=None, ge=1)
    """Requests it may have in flight at once (default: the backend's ``max_concurrency``)."""

    @field_validator("url")
    @classmethod
    def _has_scheme(cls, value: str) -> str:
        return require_scheme(value)


class FleetFile(BaseModel):
    """A fleet file: servers that serve the same model (JSON or TOML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="fleet", min_length=1)
    """Part of the cache identity (``model@name``): answers from any server of fleets of
    the same name are reused, whatever their URLs. Give fleets that serve the model
    differently (another precision, another engine) different names."""
    servers: tuple[FleetServer, ...] = Field(min_length=1)
    """The servers."""


def require_scheme(url: str) -> str:
    """``url``, or a :class:`ValueError` for pydantic when it has no ``http(s)://`` or holds
    credentials (``user:password@``: transports send them as Basic auth, or fail, and
    servers echo them back)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https:// (e.g. http://{url})")
    if credentials_in(url):
        raise ValueError(f"must not hold credentials ({without_credentials(url)} with a "
                         "user:password@ part): give the key with the backend's key "
                         "variable or api_key=..., never in the URL")
    return url


def credentials_in(url: str) -> bool:
    """Whether ``url`` has a ``user:password@`` (or ``user@``) part."""
    parts = urlsplit(url)
    return bool(parts.username or parts.password)


def hide_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` part of any URL in it replaced by ``***@``.

    >>> hide_credentials("got 'http://me:pw@gpu1:8000/v1'")
    "got 'http://***@gpu1:8000/v1'"
    """
    return _USERINFO.sub("//***@", text)


_USERINFO = re.compile(r"//[^/@\s'\"]+@")


def read_fleet(path: str | Path) -> FleetFile:
    """The fleet file at ``path``, or a :class:`ConfigError` naming the file and field."""
    try:
        raw = read_override(path, "MIKE_FLEET", "Fleet file", "fleet=")
        return FleetFile.model_validate(raw)
    except ValueError as exc:  # JSON or TOML syntax, or a ValidationError
        detail = hide_credentials("; ".join(f"{where}: {what}" for where, what in problems(exc))
                                  if isinstance(exc, ValidationError) else str(exc))
        raise ConfigError(
            f"Fleet file {path} is not valid: {detail}. Expected: name = \"...\" (optional) "
            "and [[servers]] entries with url = \"http://host:port/v1\" and an optional "
            "concurrency = N.") from None


@dataclass(eq=False)
class Member(Generic[T]):
    """A server of the fleet and what is known of its health."""

    label: str
    """How logs name it (its URL, without credentials)."""
    capacity: int
    """Requests it may have in flight at once."""
    target: T
    """What a request is sent through (the backend's client for this server)."""
    in_flight: int = 0
    """Requests sent to it and not yet answered."""
    answered: int = 0
    """Requests it answered."""
    failed: int = 0
    """Requests that failed on it (and went to another server or to the retry layer)."""
    in_a_row: int = 0
    """Failures since its last answer."""
    down_until: float | None = None
    """While out: when it may be tried again (monotonic seconds)."""
    pause: float = field(default=PAUSE_S)
    """The pause it gets the next time it is taken out."""

    def usable(self, now: float) -> bool:
        """Not taken out, or its pause is over (then one request at a time probes it)."""
        if self.down_until is None:
            return self.in_flight < self.capacity
        return now >= self.down_until and self.in_flight == 0


def _against_server(failure: CallFailed) -> bool:
    """Whether a failure says something about the server rather than the request or
    the account (a 400, a refused key or a rate limit would fail on every server)."""
    return isinstance(failure, Transient) and not isinstance(failure, RateLimited)


class Fleet(Generic[T]):
    """Servers of one model behind one :meth:`send`.

    ``clock`` is the monotonic clock (tests pass their own).
    """

    def __init__(self, members: Sequence[Member[T]], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not members:
            raise ConfigError("A fleet needs at least one server.")
        self.members = list(members)
        self._clock = clock
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def capacity(self) -> int:
        """Requests the whole fleet may have in flight."""
        return sum(m.capacity for m in self.members)

    def _condition(self) -> asyncio.Condition:
        # One per event loop: a condition belongs to the loop that first waits on it.
        loop = asyncio.get_running_loop()
        if self._changed is None or self._loop is not loop:
            self._changed, self._loop = asyncio.Condition(), loop
        return self._changed

    def _pick(self, tried: set[Member[T]]) -> Member[T] | bool | None:
        """The least-loaded usable server not yet tried; ``True`` when every candidate is
        busy (wait); ``None`` when no candidate is left."""
        now = self._clock()
        candidates = [m for m in self.members if m not in tried]
        if not candidates:
            return None
        usable = [m for m in candidates if m.usable(now)]
        if usable:
            return min(usable, key=lambda m: (m.in_flight / m.capacity, m.answered))
        if any(m.down_until is None or m.in_flight for m in candidates):
            return True  # busy, or a probe is under way: wait for a slot
        return None  # every candidate is out and not due for a probe yet

    async def _acquire(self, tried: set[Member[T]]) -> Member[T] | None:
        changed = self._condition()
        async with changed:
            while True:
                picked = self._pick(tried)
                if picked is None or isinstance(picked, Member):
                    if picked is not None:
                        picked.in_flight += 1
                    return picked
                # A probe's pause may end while waiting: look again within a second.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=1.0)

    async def _release(self) -> None:
        changed = self._condition()
        async with changed:
            changed.notify_all()

    async def send(self, call: Callable[[T], Awaitable[R]]) -> R:
        """``await call(target)`` on the least-loaded healthy server; on a server failure,
        on the next one. Raises the last server failure when every server failed or is
        out (the retry layer then waits and tries again), and any other failure at once.
        """
        tried: set[Member[T]] = set()
        last: CallFailed | None = None
        while True:
            member = await self._acquire(tried)
            if member is None:
                raise last or self._all_out()
            try:
                result = await call(member.target)
            except CallFailed as failure:
                if isinstance(failure, (AuthFailed, ModelNotFound)) and len(self.members) > 1:
                    # It stops the run: say which server, one of the fleet may be set up wrong.
                    raise type(failure)(f"{failure} (server {member.label})",
                                        status=failure.status) from None
                if not _against_server(failure):
                    raise
                self._failed(member, failure)  # before its slot is free for another
                tried.add(member)
                last = failure
                continue
            else:
                self._answered(member)
                return result
            finally:
                member.in_flight -= 1
                await self._release()

    def _answered(self, member: Member[T]) -> None:
        if member.down_until is not None:
            log.warning("%s answers again: back in the fleet.", member.label)
        member.answered += 1
        member.in_a_row = 0
        member.down_until = None
        member.pause = PAUSE_S

    def _failed(self, member: Member[T], failure: CallFailed) -> None:
        member.failed += 1
        member.in_a_row += 1
        now = self._clock()
        if member.down_until is not None and now < member.down_until:
            return  # sent before it was taken out: the pause already covers it
        probing = member.down_until is not None
        if isinstance(failure, Unreachable) or member.in_a_row >= DOWN_AFTER or probing:
            member.down_until = now + member.pause
            others = sum(1 for m in self.members if m is not member and m.down_until is None)
            log.warning("%s taken out of the fleet (%s); its requests go to the other %d "
                        "server(s); trying it again in %.0f s.", member.label, failure,
                        others, member.pause)
            member.pause = min(MAX_PAUSE_S, member.pause * 2)

    def _all_out(self) -> Unreachable:
        labels = ", ".join(m.label for m in self.members)
        return Unreachable(f"Every server of the fleet is out ({labels}); each is tried "
                           "again after a pause.")

    def summary(self) -> str:
        """One line per server: answered, failed, and whether it is out."""
        lines = []
        for m in self.members:
            state = "out" if m.down_until is not None else "in"
            lines.append(f"{m.label}: {m.answered} answered, {m.failed} failed, {state}")
        return "\n".join(lines)
