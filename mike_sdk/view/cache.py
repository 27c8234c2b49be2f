"""The columnar cache of `mike view`: a run's rows and stored requests in one DuckDB file.

DuckDB reads the results file and the prompt store itself, once
(:mod:`~mike_sdk.view.ingest`: one row per item as the run-folder readers keep it, no
Python object per row), into ``view.duckdb``: a ``rows`` table (one flat record per
item, with the question and a lower-cased search column), a ``requests`` table (each
request's parts, by cache key) and a ``blocks`` table (the shared demonstration
blocks). DuckDB's own format opens in milliseconds, reads only the columns and blocks
a query needs, and finds one row by a scan of the id column (milliseconds; an index
would cost seconds to build). The manifest (and the summary) are read through the
run-folder readers, as `mike report` reads them. The file lives under
``$MIKE_CACHE_DIR/view`` (or ``--cache-dir``),
never in the run folder, in a folder named by a hash of the source files' paths, sizes,
modification times and first and last MiB: a run that grew or changed gets a new cache,
an unchanged one opens at once."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from mike_sdk.calls.cache import default_cache_root
from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.files import MANIFEST, PLAIN_RESULTS, PROMPTS, RESULTS, SUMMARY
from mike_sdk.runfolder.merge import shards_as_run
from mike_sdk.runfolder.rundir import read_manifest, read_summary, results_file
from mike_sdk.view.ingest import load_prompts, load_rows, write_rows

__all__ = ["CachedRun", "cache_run", "check_run_folder", "group_runs"]

#: Raise when the cached files' layout changes: older caches are then rebuilt.
LAYOUT = 3
#: DuckDB's memory while it builds a cache (beyond it, it spills to the scratch folder).
BUILD_MEMORY = "300MB"
DATABASE = "view.duckdb"
#: Bytes hashed at each end of a source file (with its size and modification time, in
#: nanoseconds: a whole-file hash of 200 MB would cost most of the time a reopen takes).
_ENDS = 1 << 20
#: Columns the filter menus list.
FACETS = ("task", "source", "target", "metric", "script", "family", "label")


class CachedRun(BaseModel):
    """A run folder (or the shards of one run) as the viewer reads it."""

    model_config = ConfigDict(frozen=True)

    sources: tuple[str, ...]
    """The folders given (several for the shards of one run)."""
    folder: str
    """The cache folder holding ``view.duckdb``."""
    rows: int
    """Rows (one per item) in ``rows.parquet``."""
    scorers: tuple[str, ...]
    """Scorers of the run (``score_<name>`` columns)."""
    manifest: dict[str, Any]
    """The run's ``manifest.json`` (shards: the merged one)."""
    summary: dict[str, Any] | None
    """The run's ``summary.json`` (None while the run has not written one)."""
    facets: dict[str, list[str]]
    """Each filterable column's distinct values (the filter menus)."""

    @property
    def database(self) -> str:
        """The DuckDB file of the run's tables."""
        return str(Path(self.folder) / DATABASE)


def _digest(folders: Sequence[Path]) -> str:
    """The cache's name: the source files' paths, sizes, times and their contents' ends."""
    digest = hashlib.sha256(f"layout {LAYOUT}\n".encode())
    for folder in folders:
        for path in (folder.resolve() / MANIFEST, folder.resolve() / SUMMARY,
                     results_file(folder.resolve()), folder.resolve() / PROMPTS):
            if not path.exists():
                continue
            stat = path.stat()
            digest.update(f"{path}\n{stat.st_size}\n{stat.st_mtime_ns}\n".encode())
            with path.open("rb") as fh:  # the ends: where an append-only file changes
                digest.update(fh.read(_ENDS))
                fh.seek(max(0, stat.st_size - _ENDS))
                digest.update(fh.read(_ENDS))
    return digest.hexdigest()[:32]


def _build(folder: Path, out: Path, scorers: list[str], with_request: bool
           ) -> tuple[int, dict[str, list[str]]]:
    """Write ``out/view.duckdb``; returns the rows and the facets."""
    import duckdb

    con = duckdb.connect(str(out / DATABASE))
    try:
        # Spills (a large sort or join) go to the scratch folder, not to memory.
        con.execute(f"SET temp_directory = '{out / 'spill'}'")
        con.execute(f"SET memory_limit = '{BUILD_MEMORY}'")
        # DuckDB's automatic choice tries FSST on every string column, which costs
        # two-thirds of the write; dictionary-or-plain writes 3x faster, for a bigger file.
        con.execute("SET force_compression = 'dictionary'")
        count, source = load_rows(con, folder, scorers, with_request, out)
        if not count:
            raise ConfigError(f"{results_file(folder)} has no complete rows yet: nothing to "
                              "view. Run `mike eval` into that folder first.")
        load_prompts(con, folder, with_request, out)
        write_rows(con, source, scorers)
        facets = {name: [str(v[0]) for v in con.execute(
            f"SELECT DISTINCT {name} FROM rows WHERE {name} IS NOT NULL ORDER BY 1").fetchall()]
            for name in FACETS}
    finally:
        con.close()
    for leftover in out.iterdir():
        if leftover.name != DATABASE:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return count, facets


def check_run_folder(source: Path, manifest: bool = True) -> None:
    """Refuse, in one line, a folder without rows (or, with ``manifest``, without the
    manifest that says how to trust them)."""
    if not results_file(source).is_file():
        raise ConfigError(f"No {RESULTS} (or {PLAIN_RESULTS}) in {source}: is it a run "
                          "folder? Name folders that `mike eval --run-dir` wrote.")
    if manifest and not (source / MANIFEST).is_file():
        raise ConfigError(f"{source} has rows but no {MANIFEST}: not a run folder mike-sdk "
                          "wrote (or a damaged one); it cannot be trusted.")


@contextmanager
def _one_run(sources: Sequence[Path]) -> Iterator[Path]:
    """The folder to read: the run itself, or its shards merged into a temporary one."""
    for source in sources:
        check_run_folder(source, manifest=False)
    with shards_as_run(list(sources)) as folders:
        if len(folders) != 1:
            raise ConfigError(f"{sources[0]} and {sources[1]} are two runs, not the shards "
                              "of one: give them as separate runs.")
        yield Path(folders[0])


def cache_run(sources: Sequence[str | Path], cache_root: str | Path | None = None,
              on_build: Callable[[list[Path], Path], None] | None = None) -> CachedRun:
    """The cached columnar copy of a run (one folder, or all the shards of one run),
    built on first use and whenever a source file changed (``on_build(sources, root)``
    is called first then: building takes about 11 CPU seconds per 500,000 rows)."""
    paths = [Path(s) for s in sources]
    root = Path(cache_root) if cache_root else default_cache_root() / "view"
    for path in paths:
        if (path / MANIFEST).is_file():
            read_manifest(path)  # a newer format is refused before anything is read
    target = root / _digest(paths)
    meta = target / "run.json"
    if meta.is_file():
        return CachedRun.model_validate_json(meta.read_text(encoding="utf-8"))
    root.mkdir(parents=True, exist_ok=True)
    if on_build is not None:
        on_build(paths, root)
    with _one_run(paths) as folder, tempfile.TemporaryDirectory(dir=root) as scratch:
        check_run_folder(folder)
        manifest = read_manifest(folder)
        summary = read_summary(folder) if (folder / SUMMARY).is_file() else None
        scorers = list(manifest.scorers)
        build = Path(scratch) / "run"
        build.mkdir()
        count, facets = _build(folder, build, scorers, with_request=manifest.format < 2)
        run = CachedRun(sources=tuple(str(p) for p in paths), folder=str(target), rows=count,
                        scorers=tuple(scorers), manifest=manifest.model_dump(mode="json"),
                        summary=summary.model_dump(mode="json") if summary else None,
                        facets=facets)
        (build / "run.json").write_text(run.model_dump_json(), encoding="utf-8")
        try:
            os.replace(build, target)
        except OSError:  # another viewer built the same cache meanwhile: keep theirs
            shutil.rmtree(build, ignore_errors=True)
    return CachedRun.model_validate_json(meta.read_text(encoding="utf-8"))


def group_runs(folders: Sequence[str | Path]) -> list[list[Path]]:
    """The runs among ``folders``: each unsharded folder alone, the shards of one run
    (same configuration but for ``--shard``, backend and strategy) together."""
    runs: list[list[Path]] = []
    shards: dict[str, list[Path]] = {}
    for folder in map(Path, folders):
        manifest = read_manifest(folder) if (folder / MANIFEST).is_file() else None
        if manifest is None or manifest.config.shard is None:
            runs.append([folder])
            continue
        key = json.dumps([manifest.config.model_copy(update={"shard": None}).model_dump(
            mode="json"), manifest.backend.model_dump(mode="json"), manifest.strategy],
            sort_keys=True)
        if key not in shards:
            shards[key] = []
            runs.append(shards[key])
        shards[key].append(folder)
    return runs
