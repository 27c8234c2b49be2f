"""The run's side of its helper processes: starting them, handing out blocks, writing
what they send.

Blocks are handed out one at a time, to whoever asks first (the run's own process asks
through :meth:`HelperPool.own_work`), so a busy core simply takes fewer. A thread per
helper answers its claims at once; the blocks it sends are handed to the event loop and
written between two of the run's own chunks, as the run writes its own rows: requests
first, then rows. A block a helper gives back, or had claimed when it stopped, is free
again, and the run's process answers it after the helpers are done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from mike_sdk.parallel.messages import CLAIM, BlockRows, Failed, GaveBack
from mike_sdk.run.plan import Planner, WorkItem
from mike_sdk.run.progress import Progress
from mike_sdk.run.results import Aggregator
from mike_sdk.runfolder.prompts import PromptStore
from mike_sdk.runfolder.rundir import RunDir

__all__ = ["MIN_ROWS", "HelperPool", "RunSink", "helper_count"]

log = logging.getLogger(__name__)

#: Rows a run must plan before helpers start on their own: a helper takes a second or
#: two to start (Python, the tokenizer), which a small run does not win back.
MIN_ROWS = 20_000
#: Processes a run uses at most unless told (``processes``): the run's and helpers.
MAX_AUTO = 4
_FREE, _DONE = -1, -2
_OWN = 0  # the run's own process, as a claimer


def helper_count(processes: int | None, rows: int) -> int:
    """Helpers to start: ``processes - 1``; by default (None) one per spare core, up to
    ``MAX_AUTO - 1``, for runs of at least :data:`MIN_ROWS` rows, on POSIX systems."""
    if os.name != "posix":
        return 0
    if processes is not None:
        return max(0, processes - 1)
    if rows < MIN_ROWS:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1
    return max(0, min(cores, MAX_AUTO) - 1)


@dataclass
class RunSink:
    """Writes a helper's block into the run, as the run writes its own chunks."""

    store: PromptStore
    run: RunDir
    aggregator: Aggregator
    planner: Planner
    bar: Progress

    def __call__(self, block: BlockRows) -> None:
        self.store.write(block.prompts)  # before the rows that name them
        self.run.append_packed(block.rows)
        self.aggregator.merge(block.aggregator)
        self.planner.absorb(self.planner.blocks()[block.index], block.plan)
        self.bar.requests(block.requests, cached=True)
        self.bar.likelihoods(block.likelihoods)
        self.bar.rows(block.count)


@dataclass
class _Helper:
    number: int
    process: subprocess.Popen[bytes]
    inbox: Connection
    outbox: Connection
    ended: bool = False
    listener: threading.Thread | None = None


class HelperPool:
    """``count`` helper processes answering blocks of a plan of ``blocks`` blocks, each
    sent ``job`` (a pickled :class:`~mike_sdk.parallel.messages.Job`); ``take`` writes
    each block a helper answers (from the event loop's thread)."""

    def __init__(self, job: bytes, *, blocks: int, count: int,
                 take: Callable[[BlockRows], None]) -> None:
        self._owner = [_FREE] * blocks
        self._lock = threading.Lock()  # the run claims in its loop, listeners in theirs
        self._take = take
        self.strategy_files: dict[str, str] = {}
        """Data files the helpers' strategies read beyond the plan's."""
        self.answered = 0
        """Blocks the helpers answered."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._failure: BaseException | None = None
        """What writing a helper's block raised (the run raises it at its next block)."""
        self._all_ended: asyncio.Future[None] | None = None
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._helpers: list[_Helper] = []
        try:
            for number in range(1, count + 1):
                self._helpers.append(self._start(number, job, env))
        except OSError:
            self.close()
            raise

    @staticmethod
    def _start(number: int, payload: bytes, env: dict[str, str]) -> _Helper:
        to_read, to_write = os.pipe()
        from_read, from_write = os.pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "mike_sdk.parallel.helper", str(to_read), str(from_write)],
            pass_fds=(to_read, from_write), stdin=subprocess.DEVNULL, env=env)
        os.close(to_read)
        os.close(from_write)
        helper = _Helper(number, process, Connection(from_read, writable=False),
                         Connection(to_write, readable=False))
        # A thread: the job may be bigger than the pipe holds before the helper reads.
        threading.Thread(target=helper.outbox.send_bytes, args=(payload,), daemon=True).start()
        return helper

    def attach(self) -> None:
        """Hear the helpers from now on: a thread per helper answers its claims at once
        (the event loop may be busy for a while) and hands the rest to the running loop."""
        loop = self._loop = asyncio.get_running_loop()
        self._all_ended = loop.create_future()
        for helper in self._helpers:
            helper.listener = threading.Thread(target=self._listen, args=(helper, loop),
                                               daemon=True, name=f"mike-helper-{helper.number}")
            helper.listener.start()

    def claim(self, who: int) -> int | None:
        """The next free block, now ``who``'s; None when every block is taken."""
        with self._lock:
            for index, owner in enumerate(self._owner):
                if owner == _FREE:
                    self._owner[index] = who
                    return index
        return None

    def own_work(self, planner: Planner) -> Iterator[WorkItem]:
        """The work items of the blocks the run's own process claims, one block at a time
        (raises what writing a helper's block raised)."""
        blocks = planner.blocks()
        while (index := self.claim(_OWN)) is not None:
            self._raise()
            yield from planner.block(blocks[index])
        self._raise()

    async def finished(self) -> None:
        """Wait until every helper has ended (their blocks written or free again)."""
        if self._all_ended is not None:
            await self._all_ended
        self._raise()

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _listen(self, helper: _Helper, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while True:
                message = helper.inbox.recv()
                if message == CLAIM:
                    helper.outbox.send(self.claim(helper.number))
                else:
                    loop.call_soon_threadsafe(self._handle, message)
        except (EOFError, OSError):
            pass  # the helper has ended (or was stopped)
        loop.call_soon_threadsafe(self._end, helper)

    def _handle(self, message: object) -> None:
        if self._closed or self._failure is not None:
            return  # sent before the helper was stopped: its rows are not wanted now
        if isinstance(message, BlockRows):
            with self._lock:
                self._owner[message.index] = _DONE
            self.strategy_files.update(message.strategy_files)
            self.answered += 1
            try:
                self._take(message)
            except BaseException as exc:  # a full disk: the run stops with it, not here
                self._failure = exc
        elif isinstance(message, GaveBack):
            with self._lock:
                self._owner[message.index] = _FREE
            log.info("A helper process gave block %d back (%s): this process answers "
                     "it.", message.index, message.why)
        elif isinstance(message, Failed):
            log.warning("A helper process stopped (%s): this process answers its blocks.",
                        message.message)

    def _end(self, helper: _Helper) -> None:
        """A helper's pipe closed, after all it sent was handled: what it claimed and did
        not send is free again."""
        helper.ended = True
        with self._lock:
            self._owner = [_FREE if owner == helper.number else owner
                           for owner in self._owner]
        if all(h.ended for h in self._helpers) and self._all_ended is not None \
                and not self._all_ended.done():
            self._all_ended.set_result(None)

    def close(self) -> None:
        """Stop the helpers still running (an error, Ctrl-C, or a stopped run), wait for
        every helper to exit, and close the pipes."""
        self._closed = True
        for helper in self._helpers:
            if not helper.ended:
                helper.process.kill()
            helper.process.wait()
            if helper.listener is not None:
                helper.listener.join()  # it stops at the closed pipe
            helper.inbox.close()
            helper.outbox.close()
        log.info("%d helper processes answered %d of %d blocks.", len(self._helpers),
                 self.answered, len(self._owner))
