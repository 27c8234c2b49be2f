"""What the run's process and its helpers send each other (pickled, over pipes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mike_sdk.backend import Abilities, Identity, Tokenizer
from mike_sdk.calls.limits import Limits
from mike_sdk.providers.settings import RequestSettings
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import BlockPlan
from mike_sdk.run.results import Aggregator

__all__ = ["CLAIM", "BlockRows", "Failed", "GaveBack", "Job"]

#: A helper asks for a block; the answer is a block's number, or None: nothing left.
CLAIM = "claim"


@dataclass(frozen=True)
class Job:
    """Everything a helper needs to answer blocks as the run's process would."""

    data_root: Path
    """The BMIKE-53 folder."""
    config: EvalConfig
    """The run's configuration."""
    modules: tuple[str, ...]
    """Modules to import first, by name or file (where the strategy registers itself)."""
    identity: Identity
    """The model's cache identity (the keys)."""
    abilities: Abilities
    """What the backend does (how prompts are rendered, which checks are asked)."""
    settings: RequestSettings | None
    """How the backend builds requests (the call guard's view of them)."""
    tokenizer: Tokenizer | None
    """The model's tokenizer (the F1 scores), or None."""
    limits: Limits
    """The run's limits: the prices that the rows' costs are computed at."""
    cache_dir: Path
    """The response cache folder."""
    verdicts: Path | None
    """The stored language verdicts (lingua runs), or None (scripts only)."""
    recorded: dict[str, str] = field(default_factory=dict)
    """sha256 of the data files the run folder recorded."""


@dataclass(frozen=True)
class BlockRows:
    """One block answered: its rows and requests, packed as the run folder keeps them."""

    index: int
    """The block's number in the plan."""
    prompts: bytes
    """gzip members of ``prompts.jsonl.gz`` lines (written before the rows)."""
    rows: bytes
    """gzip members of ``results.jsonl.gz`` lines."""
    count: int
    """Rows in :attr:`rows`."""
    requests: int
    """Generations read from the cache."""
    likelihoods: int
    """Likelihood scores read from the cache."""
    aggregator: Aggregator
    """The rows, counted."""
    plan: BlockPlan
    """What planning the block found."""
    strategy_files: dict[str, str]
    """Data files the strategy read beyond the plan's (retrieval pools)."""


@dataclass(frozen=True)
class GaveBack:
    """A block the helper could not answer from the cache alone; it stops claiming."""

    index: int
    """The block's number."""
    why: str
    """What was missing."""


@dataclass(frozen=True)
class Failed:
    """The helper stopped on an error; its unanswered blocks go back to the run."""

    message: str
    """The error, in one line."""
