"""Seeded samples of item positions: ``--sample N`` and the rounds of ``--target-ci W``.

Each position of a task's test file gets a rank from a hash of ``(seed, task, position)``;
a sample of ``N`` is the ``N`` best-ranked positions. The rank of a position does not
depend on ``N``, on the file's length or on the language, so:

* every language and every model gets the same positions (runs pair item by item);
* a larger ``N`` takes the same positions and more, re-using every cached answer;
* the rank order is one permutation, along which ``--target-ci`` adds rounds.

A hash rather than ``random.shuffle``: the permutation must stay the same across Python
versions and platforms, or a resumed run would plan other items.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mike_sdk.run.config import EvalConfig

__all__ = ["expected_positions", "permutation", "positions", "sample_size"]


def _rank(seed: int, task: str, position: int) -> bytes:
    return hashlib.sha256(f"bmike53-sample/{seed}/{task}/{position}".encode()).digest()


def permutation(task: str, size: int, seed: int) -> list[int]:
    """The positions ``0..size-1`` of ``task``'s test files in sample order."""
    return sorted(range(size), key=lambda i: _rank(seed, task, i))


def positions(task: str, size: int, n: int | None, seed: int) -> frozenset[int]:
    """The first ``n`` positions of the permutation (all of them when ``n`` is None)."""
    order = permutation(task, size, seed)
    return frozenset(order if n is None else order[:n])


def sample_size(task: str, sample: int | None, sizes: Mapping[str, int] | None) -> int | None:
    """Items per task to take: a round's size for ``task`` when rounds give one, else
    ``sample`` (None: every item)."""
    if sizes is not None and task in sizes:
        return sizes[task]
    return sample


def expected_positions(task: str, size: int, config: EvalConfig,
                       sizes: Mapping[str, int] | None = None) -> int:
    """Positions of ``task`` (``size`` in its files) that ``config`` plans, per language
    pair: the progress bar's total."""
    if config.sampled:
        chosen: Sequence[int] = sorted(positions(task, size, sample_size(
            task, config.sample, sizes), config.seed))
    else:
        chosen = range(min(config.limit or size, size))
    mine, of = config.shard or (1, 1)
    return sum(1 for p in chosen if p % of == mine - 1)


def on_permutation(config: EvalConfig, available: Mapping[str, int]) -> Callable[[str], bool]:
    """Whether a row id (``task/src>tgt/index/metric``) names an item that some round of
    this ``target_ci`` run may plan: a round resumed after a kill finds rows of the rounds
    after it, which are checked when those rounds are replayed, not refused as foreign."""
    pairs = {f"{s}>{t}" for s, t in config.pairs()}
    keep = {task: positions(task, size, min(config.sample or size, size), config.seed)
            for task, size in available.items()}

    def allowed(row_id: str) -> bool:
        task, pair, index, metric = row_id.split("/")
        return pair in pairs and metric in config.metrics and index.isdigit() \
            and int(index) in keep.get(task, frozenset())

    return allowed
