"""The requests a client has on the wire, and what an interruption does with them.

A request in flight is paid for whether or not anyone reads its answer. So a stop
(``max_cost``, a fatal failure) never cancels one: the client only stops sending new
ones. A call that is itself interrupted (Ctrl-C cancels the run's task) cancels what is
still queued, gives what is in flight up to :data:`DRAIN_S` to land in the cache, and
abandons the rest, returning their keys so that the run can say how many were lost.

The gate holds new sends back while the refusal watch is suspicious (see
:mod:`mike_sdk.calls.refusals`): its verdict waits until nothing is in flight.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["DRAIN_S", "InFlight"]

log = logging.getLogger(__name__)

#: Seconds an interrupted call waits for its requests in flight (paid for) to land in the
#: cache before abandoning them.
DRAIN_S = 30.0


class InFlight:
    """The sending tasks of one client in one event loop, their keys, and the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        """Set while new requests may be sent."""
        self.gate.set()
        self.tasks: dict[asyncio.Task[None], list[str]] = {}
        """Tasks with a request on the wire, and their keys."""

    @property
    def count(self) -> int:
        """Tasks with a request on the wire."""
        return len(self.tasks)

    def begin(self, batch: list[str]) -> None:
        """The current task is sending ``batch``."""
        task = asyncio.current_task()
        if task is not None:
            self.tasks[task] = batch

    def end(self) -> None:
        """The current task's request came back (or failed)."""
        task = asyncio.current_task()
        if task is not None:
            self.tasks.pop(task, None)

    async def drain(self, tasks: set[asyncio.Task[None]]) -> list[str]:
        """Cancel the queued ones among ``tasks``, wait up to :data:`DRAIN_S` for those in
        flight; returns the keys of the requests abandoned."""
        flying = {t: self.tasks[t] for t in tasks if t in self.tasks}
        for task in tasks - flying.keys():
            task.cancel()
        if not flying:
            return []
        log.warning("Waiting up to %.0f s for %d requests in flight (paid for) to land in "
                    "the cache.", DRAIN_S, len(flying))
        try:
            _, late = await asyncio.wait(flying, timeout=DRAIN_S)
        except asyncio.CancelledError:  # interrupted again: stop waiting
            late = {t for t in flying if not t.done()}
        abandoned = [key for task in late for key in flying[task]]
        for task in late:
            task.cancel()
        if abandoned:
            log.warning("Abandoned %d requests still in flight after %.0f s: they may have "
                        "been paid for; the next run asks them again.", len(abandoned),
                        DRAIN_S)
        return abandoned
