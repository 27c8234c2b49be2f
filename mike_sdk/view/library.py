"""The runs `mike view` serves, shown at once while their tables are built behind.

What the summary page needs (the manifest and ``summary.json``) is read through the
run-folder readers before the server starts, in milliseconds; the columnar cache of each
run (:func:`~mike_sdk.view.cache.cache_run`: seconds per 100,000 rows on a first open,
milliseconds after) is built in one background thread. The runs are built one after
another, in the order given, not together: one DuckDB build already keeps both cores of
a small machine busy, two at once would each take twice as long and double the memory,
and in order the first run (the one the page opens on) is ready first. Until a run is
ready, asking for its rows raises :class:`Building`, which the app answers with 503 and
the page with an "Indexing" notice it polls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mike_sdk.errors import ConfigError, MikeError, one_line
from mike_sdk.runfolder.files import SUMMARY
from mike_sdk.runfolder.rundir import read_manifest, read_summary
from mike_sdk.view.cache import CachedRun, cache_run, check_run_folder
from mike_sdk.view.tables import RunTables

__all__ = ["Building", "RunLibrary"]


class Building(Exception):  # a state the page waits out, not an error
    """Rows asked for before their run's tables are ready."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__(state["message"])
        self.state = state


def _early(group: Sequence[Path]) -> dict[str, Any]:
    """What the summary page shows before the cache exists (refusing a folder that is not
    a run at once): the manifest and summary of one folder as the readers read them. The
    shards of one run are merged by the build, so their summary waits for it."""
    for source in group:
        check_run_folder(source)
    manifests = [read_manifest(source) for source in group]
    summaries = [read_summary(s) if (s / SUMMARY).is_file() else None for s in group]
    counted = [s.totals.rows for s in summaries if s is not None]
    return {"sources": tuple(map(str, group)), "manifest": manifests[0].model_dump(mode="json"),
            "scorers": tuple(manifests[0].scorers),
            "summary": summaries[0].model_dump(mode="json") if len(group) == 1 and summaries[0]
            else None,
            "rows": sum(counted) if len(counted) == len(group) else None}


class RunLibrary:
    """The runs given (each a folder, or the shards of one run) and their tables, which
    :meth:`start` builds in the background; ``hold``, when given, keeps the build waiting
    until it is set (tests stand it in for a slow build)."""

    def __init__(self, groups: Sequence[Sequence[str | Path]], cache_root: str | Path | None = None,
                 on_build: Callable[[list[Path], Path], None] | None = None,
                 on_done: Callable[[str | None, float], None] | None = None,
                 hold: threading.Event | None = None) -> None:
        self.groups = [[Path(folder) for folder in group] for group in groups]
        self.early = [_early(group) for group in self.groups]
        self.runs: list[CachedRun] = []
        self.error: str | None = None
        self._cache_root, self._on_build, self._on_done, self._hold = (
            cache_root, on_build, on_done, hold)
        self._tables: RunTables | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, runs: list[CachedRun]) -> RunLibrary:
        """A library of runs already cached (nothing left to build)."""
        library = cls([])
        library.groups = [[Path(s) for s in run.sources] for run in runs]
        library.early = [run.model_dump() for run in runs]
        library.runs = list(runs)
        library._tables = RunTables(runs)
        return library

    def start(self) -> RunLibrary:
        """Start building the runs' tables (in a daemon thread: Ctrl-C need not wait)."""
        if self._thread is None and len(self.runs) < len(self.groups):
            self._thread = threading.Thread(target=self._build, name="mike-view-build",
                                            daemon=True)
            self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the build to end; True when every run is ready."""
        if self._thread is not None:
            self._thread.join(timeout)
        return len(self.runs) == len(self.groups)

    def _build(self) -> None:
        if self._hold is not None:
            self._hold.wait()
        start = time.perf_counter()
        try:
            for group in self.groups[len(self.runs):]:
                run = cache_run(group, self._cache_root, on_build=self._on_build)
                # A fresh connection over the runs ready so far: the first run's rows
                # answer while the next one builds.
                tables = RunTables([*self.runs, run])
                self.runs.append(run)
                self._tables = tables
        except MikeError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown on the page, never lost in a thread
            self.error = f"building the viewer's tables failed: {one_line(exc)}"
        if self._on_done is not None:
            self._on_done(self.error, time.perf_counter() - start)

    def state(self) -> dict[str, Any]:
        """The build's progress, as the page shows it."""
        total = len(self.groups)
        ready = len(self.runs)
        waiting = [e["rows"] for e in self.early[ready:]]
        rows = None if None in waiting else sum(waiting)
        message = self.error or ("ready" if ready == total else
                                 f"Indexing {rows if rows is not None else 'the'} rows "
                                 "(first open of this run only)...")
        return {"building": ready < total and self.error is None,
                "done": ready / total if total > 1 else None, "message": message,
                "error": self.error}

    def tables(self, *runs: int) -> RunTables:
        """The tables, once ``runs`` (all by default) are ready; else :class:`Building`
        (or the build's failure, as a :class:`ConfigError`)."""
        if self.error is not None:
            raise ConfigError(self.error)
        for index in runs:
            self._index(index)
        needed = max(runs, default=len(self.groups) - 1)
        if self._tables is None or needed >= len(self._tables.runs):
            raise Building(self.state())
        return self._tables

    def describe(self, index: int) -> dict[str, Any]:
        """Run ``index``'s manifest, summary, scorers and rows (the cache's once built)."""
        if self._index(index) < len(self.runs):
            return self.runs[index].model_dump()
        return self.early[index]

    def _index(self, index: int) -> int:
        if not 0 <= index < len(self.groups):
            raise ConfigError(f"bad run={index}: the viewer serves runs "
                              f"0..{len(self.groups) - 1}.")
        return index
