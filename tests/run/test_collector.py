"""The garbage collector during a run's pipeline: rarely collecting, what existed before
the run left unscanned, and the process's collector as it was once the run ends."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.collector import GC_THRESHOLD, lean_collector
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator


@pytest.fixture
def collector() -> Iterator[tuple[int, int, int]]:
    """The process's thresholds, with nothing frozen; restored after the test."""
    before = gc.get_threshold()
    gc.unfreeze()
    yield before
    gc.set_threshold(*before)
    gc.unfreeze()


class Cycle:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_nested_pipelines_restore_the_collector_once_the_outer_ends(
        collector: tuple[int, int, int]) -> None:
    with lean_collector():
        assert gc.get_threshold() == (GC_THRESHOLD, *collector[1:])
        assert gc.get_freeze_count() > 0  # the objects from before are never scanned
        with lean_collector():
            pass
        assert gc.get_threshold()[0] == GC_THRESHOLD and gc.get_freeze_count() > 0
        garbage = weakref.ref(Cycle())
        gc.collect()  # cyclic garbage made during the run is still collected
        assert garbage() is None
    assert gc.get_threshold() == collector and gc.get_freeze_count() == 0


class Watching(MockBackend):
    """Records the collector's young threshold whenever it is asked to generate."""

    def __init__(self) -> None:
        super().__init__(batch_size=4)
        self.thresholds: list[int] = []

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.thresholds.append(gc.get_threshold()[0])
        return await super().generate(requests)


def test_a_run_collects_rarely_and_leaves_the_collector_as_it_was(
        collector: tuple[int, int, int], benchmark: Benchmark, tmp_path: Path) -> None:
    backend = Watching()
    config = EvalConfig(tasks=("zsre",), languages=("de",), strategy="zero-shot", limit=2)
    with ResponseCache(tmp_path / "cache") as cache:
        Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(
            config, tmp_path / "run")
    assert backend.thresholds and set(backend.thresholds) == {GC_THRESHOLD}
    assert gc.get_threshold() == collector and gc.get_freeze_count() == 0
