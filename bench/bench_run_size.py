"""The size of a run folder, and what it would have been with every row holding its
prompt (format 1), from the same rows.

Run it on the folder a full configuration wrote, e.g. the cached re-run's::

    python bench/bench_cached_rerun.py            # writes bench/out/cached_rerun/run
    python bench/bench_run_size.py bench/out/cached_rerun/run

It prints bytes per row and the folder's size now, beside the same rows serialized the
way format 1 wrote them (the request's prompt or messages in each row, every field, the
empty ones too). Target: at most 200 MB for a full configuration (531,504 rows).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic_core import to_json

from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import iter_result_rows

FULL_ROWS = 531_504


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", nargs="?", default="bench/out/cached_rerun/run")
    args = parser.parse_args()
    folder = Path(args.run_dir)
    requests = read_requests(folder)
    rows = before = 0
    for row in iter_result_rows(folder):
        request = requests.get(row.cache_key)
        full = row.model_copy(update={"prompt": request.prompt if request else None,
                                      "messages": request.messages if request else None})
        before += len(to_json(full)) + 1
        rows += 1
    # What a run writes (not exports the user made from it).
    files = {p.name: p.stat().st_size for p in folder.iterdir()
             if p.is_file() and not (p.name.startswith("results.") and p.suffix != ".jsonl")}
    now = sum(files.values())
    old = before + sum(v for k, v in files.items()
                       if k not in ("results.jsonl", "prompts.jsonl.gz", "spend.jsonl"))
    scale = FULL_ROWS / rows if rows else 0.0
    print(f"rows={rows}")
    for name, size in sorted(files.items()):
        print(f"  {name}: {size / 2**20:.1f} MB ({size / max(rows, 1):.0f} bytes/row)")
    print(f"now:      {now / max(rows, 1):.0f} bytes/row, folder {now / 2**20:.1f} MB "
          f"-> {now * scale / 2**20:.0f} MB for a full configuration")
    print(f"format 1: {old / max(rows, 1):.0f} bytes/row, folder {old / 2**20:.1f} MB "
          f"-> {old * scale / 2**20:.0f} MB for a full configuration")
    print(f"ratio: {old / max(now, 1):.1f}x smaller; target <= 200 MB: "
          f"{'PASS' if now * scale <= 200 * 2**20 else 'FAIL'}")


if __name__ == "__main__":
    main()
