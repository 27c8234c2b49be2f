"""lingua in a worker process: language identification that costs the requests in flight
nothing.

lingua holds the GIL while it loads its models (about 800 MB and, on a busy two-core
machine, 30 s for the 33 Latin-script languages) and while it identifies, so in the run's
own process it stalls every request in flight, even from a thread. A run with lingua
therefore identifies in one worker process, started with the run: it loads the detectors
that the run's language pairs need while the first requests fly, and answers each chunk's
identifications while the event loop goes on sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from functools import lru_cache
from typing import Any

from mike_sdk.scoring.verdicts import Verdict

__all__ = ["LinguaWorker", "detector", "verdicts_of"]

#: How much lower the worker's scheduling priority is than the run's.
NICE = 10

#: A letter of each script, enough for lingua to load the models of a detector's languages.
_SAMPLE = {"Latin": "a", "Cyrillic": "а", "Greek": "α", "Arabic": "ا", "Hebrew": "א",
           "Devanagari": "क", "Bengali": "ক", "Tamil": "க", "Thai": "ก", "Georgian": "ა",
           "Armenian": "ա", "Han": "中", "Hangul": "한", "Kana": "の"}


@lru_cache(maxsize=256)
def detector(codes: frozenset[str]) -> Any:
    """A lingua detector over ``codes``, built once per set (the language models it loads
    lazily are shared by all detectors)."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper()))
                 for c in sorted(codes)]
    return LanguageDetectorBuilder.from_languages(*languages).build()


def verdicts_of(codes: frozenset[str], texts: Sequence[str]) -> list[Verdict]:
    """The most likely of ``codes`` for each text, with its relative confidence."""
    values = detector(codes).compute_language_confidence_values_in_parallel(list(texts))
    out: list[Verdict] = []
    for confidences in values:
        best = confidences[0] if confidences else None
        out.append(None if best is None
                   else (best.language.iso_code_639_1.name.lower(), float(best.value)))
    return out


def _background() -> None:
    with contextlib.suppress(OSError):
        os.nice(NICE)


def _warm(sets: Sequence[tuple[str, frozenset[str]]]) -> int:
    for script, codes in sets:
        verdicts_of(codes, [_SAMPLE.get(script, "a")])
    return len(sets)


class LinguaWorker:
    """One worker process, warmed with ``(script, codes)`` detector sets."""

    def __init__(self, sets: Iterable[tuple[str, frozenset[str]]]) -> None:
        # spawn: a fork of a process with an event loop and threads is not safe. Niced:
        # on a busy machine the requests (the run's process) come first.
        self._pool = ProcessPoolExecutor(max_workers=1,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_background)
        self.warming: Future[int] = self._pool.submit(_warm, sorted(set(sets), key=str))
        """Loading the detectors (done before the first identification it precedes)."""

    async def verdicts(self, codes: frozenset[str], texts: Sequence[str]) -> list[Verdict]:
        """:func:`verdicts_of`, in the worker."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, verdicts_of, codes, list(texts))

    def close(self) -> None:
        """Stop the worker (what it was loading is dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
