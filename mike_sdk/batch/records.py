"""The run folder's record of provider batches: ``batches.jsonl``, append-only.

Every batch is written down before anything is sent: an *intent* line with the request
keys it holds, then a line with the provider's id once the batch exists, then a line
per change of state or counts, and last a ``collected`` line once its answers are in the
response cache. The latest line of a batch wins for every field it carries; the keys are
only in the intent line. A re-run (after a crash, a Ctrl-C, or on another machine with
the same folder) reads the file back and re-attaches to the batches in flight.

Local states besides the provider's own (``validating`` ... ``completed`` for OpenAI,
``in_progress``/``canceling``/``ended`` for Anthropic):

* ``intent``: written, nothing sent yet (or sent and the process died before the id came);
* ``uploaded``: OpenAI's input file is uploaded (``input_file_id``), no batch yet;
* ``collected``: the results are in the cache (``refused`` and ``retry`` say what was not);
* ``lost``: an intent whose batch the provider does not have: its keys are sent again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, Field
from pydantic_core import to_json

from mike_sdk.errors import ConfigError

BATCHES = "batches.jsonl"
"""The file of batch records in a run folder."""
BATCH_LOCK = "batches.lock"
"""Held by the one process that submits and collects a folder's batches."""
#: Provider states after which a batch changes no more.
ENDED_STATES = frozenset({"completed", "failed", "expired", "cancelled", "ended"})
#: Local states of a batch that needs nothing more.
SETTLED_STATES = frozenset({"collected", "lost"})

Provider = Literal["openai", "anthropic"]


class Counts(BaseModel):
    """Requests of a batch by outcome, as the provider reports them (or as collected)."""

    total: int = 0
    done: int = 0
    """Answered (OpenAI ``completed``, Anthropic ``succeeded``)."""
    errored: int = 0
    """Answered with an error (OpenAI ``failed``, Anthropic ``errored``)."""
    expired: int = 0
    canceled: int = 0


class BatchRecord(BaseModel):
    """One provider batch of a run (one line of ``batches.jsonl``)."""

    local_id: str
    """Our id, written before the provider's exists (OpenAI: in the batch's metadata)."""
    provider: Provider
    model: str
    """The provider's model name (the backend's ``options.model``)."""
    base_url: str | None = None
    """Where the batch was sent (never a password); None for the provider's own API."""
    endpoint: str
    """``/v1/chat/completions``, ``/v1/completions`` or ``/v1/messages``."""
    state: str = "intent"
    round: int = Field(default=1, ge=1)
    """1 for a first submission, 2 for a batch of retries, ..."""
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    provider_id: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    requests: int = 0
    bytes: int = 0
    """Size of the batch's request lines."""
    counts: Counts = Field(default_factory=Counts)
    estimate_usd: float | None = None
    """Upper bound of what the batch can cost, at batch prices (input estimate plus every
    request's token limit, reasoning budget included): what ``max_cost`` counts."""
    cost_usd: float | None = None
    """What the collected answers cost at batch prices."""
    canceled_by_user: bool = False
    keys: list[str] | None = None
    """The request (cache) keys of the batch: in the intent line only."""
    refused: dict[str, str] | None = None
    """Collected: keys refused for good, with the provider's message."""
    retry: dict[str, list[str]] | None = None
    """Collected: keys to send again (errored, expired, canceled, missing), by reason."""

    @property
    def ended(self) -> bool:
        """The provider will change this batch no more (or it never existed)."""
        return self.state in ENDED_STATES or self.state in SETTLED_STATES

    @property
    def settled(self) -> bool:
        """Nothing more to do for this batch."""
        return self.state in SETTLED_STATES


def new_local_id() -> str:
    """A fresh local batch id (``mb_`` and 20 hex digits: sortable by time, unique)."""
    return f"mb_{int(time.time()):08x}{uuid.uuid4().hex[:12]}"


class BatchLog:
    """``batches.jsonl`` of one run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.path = self.dir / BATCHES

    def write(self, record: BatchRecord, *, with_keys: bool = False) -> None:
        """Append the record's current state (its keys too when ``with_keys``), flushed and
        synced to disk before returning: it is written before what it announces is sent."""
        record.updated_at = time.time()
        exclude = None if with_keys else {"keys"}
        line = to_json(record.model_dump(exclude=exclude, exclude_none=True)) + b"\n"
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # `mike batches cancel` may append meanwhile
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> dict[str, BatchRecord]:
        """The batches by local id (in the order first written), latest line winning; a
        torn last line (a killed write) is left out."""
        found: dict[str, BatchRecord] = {}
        keys: dict[str, list[str]] = {}
        if not self.path.exists():
            return found
        with self.path.open("rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.endswith(b"\n"):
                    continue
                try:
                    record = BatchRecord.model_validate_json(line)
                except ValueError as exc:
                    raise ConfigError(
                        f"{self.path}, line {number}: not a batch record ({exc}). Delete the "
                        "line if it is damaged; the batch it named may then be sent again."
                    ) from None
                if record.keys is not None:
                    keys.setdefault(record.local_id, record.keys)
                found[record.local_id] = record
        for local_id, record in found.items():
            record.keys = keys.get(local_id, [])
        return found

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's batch lock: one process submits and collects at a time."""
        self.dir.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = (self.dir / BATCH_LOCK).open("w")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"Another process is running the batches of {self.dir}; "
                                  "wait for it (or stop it) and re-run.") from None
            yield
        finally:
            handle.close()
