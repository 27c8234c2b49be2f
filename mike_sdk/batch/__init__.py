"""Provider batch interfaces (OpenAI's Batch API, Anthropic's Message Batches): a run's
requests at half the price, resumable, cached under the same keys as live calls.

* :mod:`~mike_sdk.batch.records`: ``batches.jsonl`` in the run folder;
* :mod:`~mike_sdk.batch.provider`: what an adapter offers; :func:`provider_for`;
* :mod:`~mike_sdk.batch.openai_batch`, :mod:`~mike_sdk.batch.anthropic_batch`: the adapters;
* :mod:`~mike_sdk.batch.runner`: pack, submit, poll, collect, retry; :func:`cancel_batches`;
* :mod:`~mike_sdk.batch.mode`: a whole run in batch mode (rows from the cache).
"""

from mike_sdk.batch.progress import BatchProgress, describe
from mike_sdk.batch.provider import BatchProvider, Outcome, Remote, provider_for
from mike_sdk.batch.records import BATCHES, BatchLog, BatchRecord, Counts
from mike_sdk.batch.runner import BatchOptions, BatchReport, BatchRunner, cancel_batches

__all__ = ["BATCHES", "BatchLog", "BatchOptions", "BatchProgress", "BatchProvider",
           "BatchRecord", "BatchReport", "BatchRunner", "Counts", "Outcome", "Remote",
           "cancel_batches", "describe", "provider_for"]
