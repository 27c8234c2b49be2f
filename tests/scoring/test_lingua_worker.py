"""lingua in a worker process gives the verdicts it gives in this one, and the event loop
keeps turning while the worker loads and identifies."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mike_sdk.scoring.confusion import LanguageIdentifier, lingua_available
from mike_sdk.scoring.verdicts import IdentificationCache

pytestmark = pytest.mark.skipif(not lingua_available(), reason="lingua is not installed")

# Cyrillic pairs: a small detector set (five or so languages), quick to load.
QUESTIONS = [("Москва", "uk", "ru"), ("Київ є столицею України", "uk", "ru"),
             ("Санкт-Петербург", "uk", "ru"), ("Беларусь", "uk", "ru"),
             ("столиця", "uk", "ru"), ("это город в России", "uk", "ru")]


def test_the_worker_labels_as_this_process_does_without_blocking_the_loop() -> None:
    here = LanguageIdentifier()
    here.prefetch(QUESTIONS)
    expected = [here.label(a, t, s) for a, t, s in QUESTIONS]

    there = LanguageIdentifier()
    there.start([("ru", "uk")])
    assert there.worker is None  # it starts with the first answer lacking a verdict
    gaps: list[float] = []

    async def ticking(done: asyncio.Event) -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def main() -> None:
        done = asyncio.Event()
        ticker = asyncio.create_task(ticking(done))
        await there.aprefetch(QUESTIONS)
        done.set()
        await ticker

    try:
        asyncio.run(main())
        assert there.worker is not None
        assert there.worker.warming.result(timeout=60) > 0
        assert [there.label(a, t, s) for a, t, s in QUESTIONS] == expected
    finally:
        there.close()
    assert len(gaps) > 10 and max(gaps) < 0.5  # the loop never waited for lingua
    assert {x.label for x in expected} >= {"target", "source"}


def test_stored_verdicts_leave_lingua_unloaded(tmp_path: Path) -> None:
    store = IdentificationCache(tmp_path / "ids.sqlite")
    first = LanguageIdentifier(store=store)
    first.start([("ru", "uk")])
    try:
        asyncio.run(first.aprefetch(QUESTIONS))
        assert first.worker is not None  # verdicts unknown: lingua loaded and stored them
        expected = [first.label(a, t, s) for a, t, s in QUESTIONS]
    finally:
        first.close()

    again = LanguageIdentifier(store=store)  # a cached re-run: every verdict is stored
    again.start([("ru", "uk")])
    try:
        asyncio.run(again.aprefetch(QUESTIONS))
        assert again.worker is None
        assert [again.label(a, t, s) for a, t, s in QUESTIONS] == expected
        again.warm()  # fresh requests about to be sent: lingua loads while they fly
        assert again.worker is not None
    finally:
        again.close()
        store.close()
