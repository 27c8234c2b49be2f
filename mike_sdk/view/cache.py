"""The columnar cache of `mike view`: a run's rows and stored requests in one DuckDB file.

``results.jsonl`` is read once, through the run-folder readers (validated rows, one per
item: :func:`~mike_sdk.runfolder.rundir.final_rows`), and the prompt store through
:func:`~mike_sdk.runfolder.prompts.iter_entries`, into ``view.duckdb``: a ``rows`` table
(one flat record per item, with the question and a lower-cased search column), a
``requests`` table (each request's parts, by cache key) and a ``blocks`` table (the
shared demonstration blocks), indexed by item id and cache key. DuckDB's own format
opens in milliseconds, reads only the columns and blocks a query needs, and finds one
row through its index: no Python object per row is ever kept. The file lives under
``$MIKE_CACHE_DIR/view`` (or ``--cache-dir``), never in the run folder, in a folder
named by a hash of the source files' paths, sizes, modification times and first and last
MiB: a run that grew or changed gets a new cache, an unchanged one opens at once.
"""

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
from mike_sdk.runfolder.prompts import iter_entries
from mike_sdk.runfolder.rundir import final_rows, read_manifest, read_summary, results_file
from mike_sdk.view.columns import TEXT_COLUMNS, flat_record, question_of

__all__ = ["CachedRun", "cache_run", "group_runs"]

#: Raise when the cached files' layout changes: older caches are then rebuilt.
LAYOUT = 2
#: Rows per Parquet write (bounds the memory a cache build holds).
BATCH = 50_000
_SOURCES = (MANIFEST, SUMMARY, RESULTS, PLAIN_RESULTS, PROMPTS)
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
        for name in _SOURCES:
            path = folder.resolve() / name
            if not path.exists():
                continue
            stat = path.stat()
            digest.update(f"{path}\n{stat.st_size}\n{stat.st_mtime_ns}\n".encode())
            with path.open("rb") as fh:  # the ends: where an append-only file changes
                digest.update(fh.read(_ENDS))
                fh.seek(max(0, stat.st_size - _ENDS))
                digest.update(fh.read(_ENDS))
    return digest.hexdigest()[:32]


def _write_rows(folder: Path, out: Path, scorers: list[str]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: pq.ParquetWriter | None = None
    batch: list[dict[str, Any]] = []
    count = 0

    def flush() -> None:
        nonlocal writer
        table = pa.Table.from_pylist(batch, schema=writer.schema if writer else None)
        if writer is None:
            writer = pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
        batch.clear()

    for row in final_rows(folder):
        batch.append(flat_record(row, count, scorers))
        count += 1
        if len(batch) >= BATCH:
            flush()
    if batch or writer is None:
        if not batch:
            raise ConfigError(f"{results_file(folder)} has no complete rows yet: nothing to view. "
                              "Run `mike eval` into that folder first.")
        flush()
    assert writer is not None
    writer.close()
    return count


def _write_requests(folder: Path, out: Path) -> None:
    """``requests.parquet`` (key, parts as JSON, question) and ``blocks.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    requests: dict[str, list[str | None]] = {"key": [], "prompt": [], "messages": [],
                                             "question": []}
    blocks: dict[str, list[str]] = {"block": [], "text": []}
    for entry in iter_entries(folder):
        if "b" in entry:
            blocks["block"].append(entry["b"])
            blocks["text"].append(entry["t"])
            continue
        parts = entry["p"] if "p" in entry else (entry["m"][-1][1] if entry.get("m") else [])
        tail = parts[-1] if parts and isinstance(parts[-1], str) else ""
        requests["key"].append(entry["k"])
        requests["prompt"].append(json.dumps(entry["p"], ensure_ascii=False)
                                  if "p" in entry else None)
        requests["messages"].append(json.dumps(entry["m"], ensure_ascii=False)
                                    if "m" in entry else None)
        requests["question"].append(question_of(tail))
    string = pa.string()
    pq.write_table(pa.table({k: pa.array(v, string) for k, v in requests.items()}),
                   out / "requests.parquet")
    pq.write_table(pa.table({k: pa.array(v, string) for k, v in blocks.items()}),
                   out / "blocks.parquet")


def _build(folder: Path, out: Path, scorers: list[str]) -> tuple[int, dict[str, list[str]]]:
    """Write ``out/view.duckdb``; returns the rows and the facets."""
    import duckdb

    count = _write_rows(folder, out / "raw.parquet", scorers)
    _write_requests(folder, out)
    con = duckdb.connect(str(out / DATABASE))
    try:
        con.execute("SET preserve_insertion_order = false")  # queries order by seq
        # The question joins once here, so filters never join.
        search = ", ".join(f"coalesce({c}, '')" for c in TEXT_COLUMNS)
        con.execute(
            f"CREATE TABLE rows AS SELECT r.*, q.question, "
            f"lower(concat_ws(chr(31), {search})) AS haystack "
            f"FROM (SELECT * FROM read_parquet('{out / 'raw.parquet'}')) r "
            f"LEFT JOIN (SELECT key, any_value(question) AS question FROM "
            f"read_parquet('{out / 'requests.parquet'}') GROUP BY key) q ON r.cache_key = q.key")
        con.execute(f"CREATE TABLE requests AS SELECT key, any_value(prompt) AS prompt, "
                    f"any_value(messages) AS messages FROM "
                    f"read_parquet('{out / 'requests.parquet'}') GROUP BY key")
        con.execute(f"CREATE TABLE blocks AS SELECT block, any_value(text) AS text FROM "
                    f"read_parquet('{out / 'blocks.parquet'}') GROUP BY block")
        for table, column in (("rows", "id"), ("requests", "key"), ("blocks", "block")):
            con.execute(f"CREATE INDEX {table}_{column} ON {table}({column})")
        facets = {name: [str(v[0]) for v in con.execute(
            f"SELECT DISTINCT {name} FROM rows WHERE {name} IS NOT NULL ORDER BY 1").fetchall()]
            for name in FACETS}
    finally:
        con.close()
    for name in ("raw", "requests", "blocks"):
        (out / f"{name}.parquet").unlink()
    return count, facets


@contextmanager
def _one_run(sources: Sequence[Path]) -> Iterator[Path]:
    """The folder to read: the run itself, or its shards merged into a temporary one."""
    for source in sources:
        if not results_file(source).is_file():
            raise ConfigError(f"No {RESULTS} (or {PLAIN_RESULTS}) in {source}: is it a run "
                              "folder? Name folders that `mike eval --run-dir` wrote.")
    with shards_as_run(list(sources)) as folders:
        if len(folders) != 1:
            raise ConfigError(f"{sources[0]} and {sources[1]} are two runs, not the shards "
                              "of one: give them as separate runs.")
        yield Path(folders[0])


def cache_run(sources: Sequence[str | Path], cache_root: str | Path | None = None,
              on_build: Callable[[list[Path], Path], None] | None = None) -> CachedRun:
    """The cached columnar copy of a run (one folder, or all the shards of one run),
    built on first use and whenever a source file changed (``on_build(sources, root)``
    is called first then: building takes about a minute per 500,000 rows)."""
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
        manifest = read_manifest(folder) if (folder / MANIFEST).is_file() else None
        if manifest is None:
            raise ConfigError(f"{folder} has rows but no {MANIFEST}: not a run folder mike-sdk "
                              "wrote (or a damaged one); it cannot be trusted.")
        summary = read_summary(folder) if (folder / SUMMARY).is_file() else None
        scorers = list(manifest.scorers)
        build = Path(scratch) / "run"
        build.mkdir()
        count, facets = _build(folder, build, scorers)
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
