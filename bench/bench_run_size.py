"""The size of a run folder, what the same rows weighed in the earlier formats, and the
cost of writing them.

Run it on the folder a full configuration wrote, e.g. the cached re-run's::

    python bench/bench_cached_rerun.py            # writes bench/out/cached_rerun/run
    python bench/bench_run_size.py bench/out/cached_rerun/run [--write]

It prints each file's size and bytes per row, and the folder's size beside the same
rows as format 2 wrote them (``results.jsonl``, uncompressed) and as format 1 did (the
request's prompt or messages in every row, every field, the empty ones too). Target: at
most 200 MB for a full configuration (531,504 rows).

``--write`` appends every row again, in chunks of 256 as the evaluator does, into a
scratch folder, once as ``results.jsonl.gz`` (gzip members) and once as plain
``results.jsonl`` (the way format 2 wrote), and prints rows/s of the appends alone.
``--keep DIR`` keeps the gzip copy as a whole run folder of the current format (the
other files copied): a format-2 folder rewritten as this version writes it.

Memory stays flat: rows are read one at a time, and only the length of each stored
request is kept, not its text.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from pydantic_core import to_json

from mike_sdk.runfolder.files import FORMAT, PLAIN_RESULTS, PROMPTS, ResultRow
from mike_sdk.runfolder.ledger import SPEND
from mike_sdk.runfolder.prompts import iter_entries
from mike_sdk.runfolder.rundir import (
    RunDir,
    iter_result_rows,
    read_manifest,
    results_file,
    row_line,
)

FULL_ROWS = 531_504
CHUNK = 256


def request_bytes(folder: Path) -> dict[str, int]:
    """By cache key, the bytes a row of format 1 spent on its request (the JSON of its
    prompt or messages beyond the ``null`` of the field left empty)."""
    blocks: dict[str, str] = {}
    sizes: dict[str, int] = {}

    def text(parts: list[str | dict[str, str]]) -> str:
        return "".join(p if isinstance(p, str) else blocks[p["b"]] for p in parts)

    for entry in iter_entries(folder):
        if "b" in entry:
            blocks.setdefault(entry["b"], entry["t"])
        elif entry["k"] not in sizes:
            size = 0
            if "p" in entry:
                size += len(to_json(text(entry["p"]))) - len(b"null")
            if "m" in entry:
                messages = [{"role": role, "content": text(parts)} for role, parts in entry["m"]]
                size += len(to_json(messages)) - len(b"null")
            sizes[entry["k"]] = size
    return sizes


def write_rate(folder: Path, plain: bool, keep: Path | None = None) -> float:
    """Rows/s of :meth:`RunDir.append` writing the folder's rows again (appends only)."""
    manifest = read_manifest(folder).model_copy(update={"format": FORMAT})
    with tempfile.TemporaryDirectory(prefix="mike-write-") as scratch:
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            keep.mkdir(parents=True)
            scratch = str(keep)
            for name in (PROMPTS, SPEND, "summary.json"):
                if (folder / name).exists():
                    shutil.copy(folder / name, keep / name)
        if plain:  # a folder begun before format 3 keeps its plain file
            (Path(scratch) / PLAIN_RESULTS).touch()
        run = RunDir(scratch)
        run.open(manifest)
        spent = 0.0
        rows = 0
        chunk: list[ResultRow] = []
        for row in iter_result_rows(folder):
            chunk.append(row)
            if len(chunk) == CHUNK:
                start = time.perf_counter()
                run.append(chunk)
                spent += time.perf_counter() - start
                rows += len(chunk)
                chunk = []
        start = time.perf_counter()
        run.append(chunk)
        spent += time.perf_counter() - start
        run.close()
        rows += len(chunk)
        size = run.results_path.stat().st_size
    print(f"write {'results.jsonl   ' if plain else 'results.jsonl.gz'}: {rows} rows in "
          f"{spent:.2f} s = {rows / spent:,.0f} rows/s ({1e6 * spent / rows:.1f} us/row), "
          f"{size / 2**20:.1f} MB")
    return rows / spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", nargs="?", default="bench/out/cached_rerun/run")
    parser.add_argument("--write", action="store_true", help="also time writing the rows")
    parser.add_argument("--keep", type=Path, help="with --write: keep the gzip copy here")
    args = parser.parse_args()
    folder = Path(args.run_dir)
    requests = request_bytes(folder)
    rows = plain = before = 0
    for row in iter_result_rows(folder):
        plain += len(row_line(row))
        before += len(to_json(row)) + 1 + requests.get(row.cache_key, 0)
        rows += 1
    del requests
    # What a run writes (not exports the user made from it, nor a report).
    written = {results_file(folder).name, PROMPTS, SPEND, "manifest.json", "summary.json",
               "sending.jsonl", "batches.jsonl"}
    files = {p.name: p.stat().st_size for p in folder.iterdir()
             if p.is_file() and p.name in written}
    now = sum(files.values())
    rest = sum(v for k, v in files.items() if k not in (results_file(folder).name, PROMPTS,
                                                         SPEND))
    results = files.get(results_file(folder).name, 0)
    format2 = now - results + plain
    old = before + rest
    scale = FULL_ROWS / rows if rows else 0.0
    per = max(rows, 1)
    print(f"rows={rows}")
    for name, size in sorted(files.items()):
        print(f"  {name}: {size / 2**20:.1f} MB ({size / per:.0f} bytes/row)")
    for label, size in (("now", now), ("format 2", format2), ("format 1", old)):
        print(f"{label + ':':10}{size / per:5.0f} bytes/row, folder {size / 2**20:6.1f} MB "
              f"-> {size * scale / 2**20:4.0f} MB for a full configuration")
    print(f"ratio: {format2 / max(now, 1):.1f}x smaller than format 2, "
          f"{old / max(now, 1):.1f}x than format 1; target <= 200 MB: "
          f"{'PASS' if now * scale <= 200 * 2**20 else 'FAIL'}")
    if args.write:
        packed = write_rate(folder, plain=False, keep=args.keep)
        unpacked = write_rate(folder, plain=True)
        print(f"write cost: gzip members {packed / unpacked:.2f}x the rows/s of plain lines")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak_rss_mb={peak:.0f}")


if __name__ == "__main__":
    main()
