"""Provider batch interfaces (OpenAI's Batch API, Anthropic's Message Batches): a run's
requests at half the price, resumable, cached under the same keys as live calls.

* :mod:`~mike_sdk.batch.records`: ``batches.jsonl`` in the run folder;
* :mod:`~mike_sdk.batch.provider`: what a backend's batch interface offers (the adapters
  live with the backends, ``backends/batches/``); :func:`provider_for`;
* :mod:`~mike_sdk.batch.options`: sizes, polling, retries; what a session did;
* :mod:`~mike_sdk.batch.runner`: pack, submit, poll, collect, retry, through the client;
* :mod:`~mike_sdk.batch.cancel`: :func:`cancel_batches`;
* :mod:`~mike_sdk.batch.mode`: a whole run in batch mode (rows from the cache).
"""

from mike_sdk.batch.cancel import cancel_batches
from mike_sdk.batch.options import BatchOptions, BatchReport
from mike_sdk.batch.progress import BatchProgress, describe
from mike_sdk.batch.provider import BatchProvider, Outcome, Remote, provider_for
from mike_sdk.batch.records import BATCHES, BatchLog, BatchRecord, Counts
from mike_sdk.batch.runner import BatchRunner

__all__ = ["BATCHES", "BatchLog", "BatchOptions", "BatchProgress", "BatchProvider",
           "BatchRecord", "BatchReport", "BatchRunner", "Counts", "Outcome", "Remote",
           "cancel_batches", "describe", "provider_for"]
