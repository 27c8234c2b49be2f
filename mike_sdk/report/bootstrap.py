"""Percentile bootstrap of means, stratified by language and paired by item.

Everything works on *replicates*: the ``resamples`` bootstrap means of one group of
items. An average over target languages resamples item *positions* jointly
(:func:`joint_average`): every language of a task takes the same positions (a full run,
``--limit`` or ``--sample``) and an item hard in one language is hard in the others, so
resampling each language on its own understates the spread of the average (89-90%
coverage of nominal 95% intervals against 95.5% jointly, ``bench/bench_sample_coverage.py``).
:func:`average` (the average of independent per-language replicates) remains for strata
with no item-level pairing. A paired difference resamples the per-item differences.
Each group draws from its own generator, seeded from the global seed and the group's
name, so a number does not change when other groups are added to or removed from a report.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 53
CONFIDENCE = 0.95


class Estimate(BaseModel):
    """A mean x 100 with its percentile bootstrap interval."""

    model_config = ConfigDict(frozen=True)

    mean: float
    """Point estimate (mean of the items, or of the per-language means), x 100."""
    low: float
    """Lower bound of the 95% interval, x 100."""
    high: float
    """Upper bound of the 95% interval, x 100."""
    n: int
    """Items behind it (paired items, for a difference)."""

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely on one side of 0 (for differences)."""
        return self.low > 0 or self.high < 0

    def text(self, signed: bool = False) -> str:
        """``71.3 [68.0, 74.5]``."""
        sign = "+" if signed else ""
        return f"{self.mean:{sign}.1f} [{self.low:{sign}.1f}, {self.high:{sign}.1f}]"


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        from mike_sdk.errors import ConfigError

        raise ConfigError("Confidence intervals need numpy: pip install 'mike-sdk[report]'.") \
            from None
    return numpy


def rng_for(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on the seed and the group's name."""
    np_ = _numpy()
    rng: np.random.Generator = np_.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return rng


def replicates(values: Sequence[float] | Floats, resamples: int, rng: np.random.Generator,
               ) -> Floats:
    """``resamples`` means of ``values`` resampled with replacement."""
    np_ = _numpy()
    data = np_.asarray(values, dtype=np_.float64)
    if data.size == 0:
        raise ValueError("cannot bootstrap an empty sample")
    levels, counts = np_.unique(data, return_counts=True)
    if levels.size <= 32:
        # Few distinct values (exact match, the likelihood check, their differences):
        # resampling n items is drawing multinomial counts of each value, the same
        # distribution at a fraction of the cost.
        draws = rng.multinomial(data.size, counts / data.size, size=resamples)
        return draws @ levels / data.size  # type: ignore[no-any-return]
    out = np_.empty(resamples, dtype=np_.float64)
    # Chunks bound memory to ~8 MB of indices whatever the sample size.
    step = max(1, 1_000_000 // data.size)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, data.size, size=(stop - start, data.size))
        out[start:stop] = data[idx].mean(axis=1)
    return out  # type: ignore[no-any-return]


def estimate(point: float, reps: Floats, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """Percentile interval of ``reps`` around ``point`` (both on the 0..1 scale), x 100."""
    np_ = _numpy()
    tail = (1 - confidence) / 2 * 100
    low, high = np_.percentile(reps, [tail, 100 - tail])
    return Estimate(mean=round(100 * point, 4), low=round(100 * float(low), 4),
                    high=round(100 * float(high), 4), n=n)


def mean_ci(values: Sequence[float], resamples: int = DEFAULT_RESAMPLES,
            seed: int = DEFAULT_SEED, key: str = "") -> Estimate:
    """Mean of one sample (0..1 scores) with its 95% percentile bootstrap interval, x 100."""
    reps = replicates(values, resamples, rng_for(seed, key))
    return estimate(sum(values) / len(values), reps, len(values))


def paired_difference(a: dict[str, float], b: dict[str, float], resamples: int,
                      rng: np.random.Generator) -> tuple[float, Floats, int] | None:
    """Mean of ``a - b`` over the items both score, its replicates and the item count.

    None when the two share no item id (the caller then falls back to independent
    resampling)."""
    shared = sorted(a.keys() & b.keys())
    if not shared:
        return None
    diffs = [a[k] - b[k] for k in shared]
    return sum(diffs) / len(diffs), replicates(diffs, resamples, rng), len(shared)


def average(parts: list[tuple[float, Floats, int]]) -> tuple[float, Floats, int]:
    """Unweighted average of strata (point, replicates, n): each language counts once."""
    np_ = _numpy()
    point = sum(p for p, _, _ in parts) / len(parts)
    reps = np_.mean(np_.stack([r for _, r, _ in parts]), axis=0)
    return point, reps, sum(n for _, _, n in parts)


def joint_average(languages: Sequence[Mapping[int, float]], resamples: int,
                  rng: np.random.Generator) -> tuple[float, Floats, int]:
    """Unweighted average over languages of their means (point, replicates, n), resampling
    item positions (the mappings' keys) jointly: one draw of positions serves every language.

    A language lacking a position averages over the positions it has (a replicate drawing
    none of them counts it as 0, as rare as it is harmless at real sample sizes)."""
    np_ = _numpy()
    if not languages or not all(languages):
        raise ValueError("cannot bootstrap an empty sample")
    keys = sorted({k for values in languages for k in values})
    where = {k: i for i, k in enumerate(keys)}
    size = len(keys)
    scores = np_.zeros((size, len(languages)), dtype=np_.float64)
    have = np_.zeros((size, len(languages)), dtype=np_.float64)
    for j, values in enumerate(languages):
        for k, v in values.items():
            scores[where[k], j], have[where[k], j] = v, 1.0
    point = float(np_.mean(scores.sum(axis=0) / have.sum(axis=0)))
    out = np_.empty(resamples, dtype=np_.float64)
    # One draw of positions per resample, as counts of each position: the counts weight
    # every language's column at once. Chunks bound memory to ~8 MB of indices.
    step = max(1, 1_000_000 // size)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, size, size=(stop - start, size))
        idx += size * np_.arange(stop - start)[:, None]
        counts = np_.bincount(idx.ravel(), minlength=(stop - start) * size).reshape(
            stop - start, size).astype(np_.float64)
        means = (counts @ scores) / np_.maximum(counts @ have, 1)
        out[start:stop] = means.mean(axis=1)
    return point, out, sum(len(v) for v in languages)
