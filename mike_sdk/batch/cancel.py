"""``mike batches cancel``: cancelling a run's batches in flight."""

from __future__ import annotations

from pathlib import Path

from mike_sdk.batch.provider import BatchProvider
from mike_sdk.batch.records import BatchLog, BatchRecord
from mike_sdk.calls.failures import CallFailed

__all__ = ["cancel_batches"]


async def cancel_batches(provider: BatchProvider, run_dir: str | Path) -> list[BatchRecord]:
    """Cancel the run's batches in flight and record it; returns the records cancelled.

    Needs no lock: a process running the batches sees the cancellation at its next poll,
    collects what was answered and submits nothing more in that session."""
    log = BatchLog(run_dir)
    done: list[BatchRecord] = []
    records = log.read()
    claimed = {r.provider_id for r in records.values() if r.provider_id}
    for record in records.values():
        if record.ended:
            continue
        if record.provider_id is None:
            found = await provider.find(record, claimed)
            if found is None:
                continue
            record.provider_id = found
        try:
            remote = await provider.cancel(record.provider_id)
        except CallFailed:
            remote = await provider.status(record.provider_id)
            if remote.ended:
                continue
            raise
        record.state, record.counts = remote.state, remote.counts
        record.canceled_by_user = True
        log.write(record)
        done.append(record)
    return done
