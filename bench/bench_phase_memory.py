"""Peak memory of each phase after a full configuration's run, each in a fresh process.

Give it the run folder a full 8-shot configuration wrote (531,504 rows), e.g. the
cached re-run's::

    python bench/bench_cached_rerun.py              # writes bench/out/cached_rerun/run
    python bench/bench_phase_memory.py bench/out/cached_rerun/run

It cuts that folder's rows into 4 shards (rows by item position modulo 4, each with a
manifest and summary of ``--shard I/4``), then runs, each as its own process, and
prints the peak resident memory (the kernel's ``ru_maxrss`` of that process) and time:

* ``plan``: ``mike eval --dry-run`` of the whole configuration, over the run folder;
* ``merge``: ``mike merge`` of the 4 shards;
* ``report``: ``mike report --format md,csv``;
* ``export-csv`` and ``export-parquet``: ``mike export``.

Target: each under 1 GB. ``--only NAME`` runs one phase. ``--code DIR`` runs the phases
with another checkout's ``mike_sdk`` (its ``PYTHONPATH``): how the figures were before.
The shards are written in the format of the folder given (gzip members or plain lines).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mike_sdk.runfolder import rundir
from mike_sdk.runfolder.files import RESULTS, ResultRow
from mike_sdk.runfolder.members import member

SHARDS = 4
LIMIT_MB = 1024
#: Rows per gzip member of a shard (as the evaluator's chunks).
MEMBER_ROWS = 256


def make_shards(run: Path, out: Path) -> list[Path]:
    """The run's rows cut into :data:`SHARDS` shard folders under ``out``."""
    manifest, summary = rundir.read_manifest(run), rundir.read_summary(run)
    folders = [out / f"shard{i}" for i in range(1, SHARDS + 1)]
    for i, folder in enumerate(folders, 1):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        config = manifest.config.model_copy(update={"shard": (i, SHARDS)})
        rundir.write_manifest(folder, manifest.model_copy(update={"config": config}))
        rundir.write_summary(folder, summary.model_copy(update={"config": config}))
    name = rundir.results_file(run).name
    pack = member if name == RESULTS else bytes
    sinks = [(f / name).open("wb") for f in folders]
    pending: list[list[bytes]] = [[] for _ in folders]
    for row, line in rundir.validated_lines(run, ResultRow):
        lines = pending[row.index % SHARDS]
        lines.append(line)
        if len(lines) >= MEMBER_ROWS:
            sinks[row.index % SHARDS].write(pack(b"".join(lines)))
            lines.clear()
    for sink, lines in zip(sinks, pending, strict=True):
        if lines:
            sink.write(pack(b"".join(lines)))
        sink.close()
    return folders


def measure(name: str, command: list[str], code: str | None) -> tuple[float, float, int]:
    """Peak RSS (MB) and seconds of one command, run as a fresh process."""
    env = {**os.environ, **({"PYTHONPATH": code} if code else {})}
    start = time.perf_counter()
    # In the checkout's folder: ``python -m`` puts the current folder first on sys.path.
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, cwd=code)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        print(f"  {name}: exit {proc.returncode}: {err.decode()[-400:]}")
    return usage.ru_maxrss / 1024, elapsed, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", nargs="?", default="bench/out/cached_rerun/run")
    parser.add_argument("--data-dir", default="../shared/bmike53")
    parser.add_argument("--out", default="bench/out/phase_memory")
    parser.add_argument("--code", help="a checkout whose mike_sdk the phases run")
    parser.add_argument("--only", help="one phase: plan, merge, report, export-csv, "
                        "export-parquet")
    args = parser.parse_args()
    run, out = Path(args.run_dir).resolve(), Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    mike = [sys.executable, "-m", "mike_sdk.cli.main"]
    manifest = rundir.read_manifest(run)
    config = manifest.config
    phases: dict[str, list[str]] = {
        "plan": [*mike, "eval", "--dry-run", "--backend", manifest.backend.kind,
                 "--strategy", config.strategy, "--data-dir", str(Path(args.data_dir).resolve()),
                 "--language-id", config.language_id,
                 "--run-dir", str(run)],
        "merge": [*mike, "merge", "--out", str(out / "merged"),
                  *(str(out / f"shard{i}") for i in range(1, SHARDS + 1))],
        "report": [*mike, "report", str(run), "--format", "md,csv", "--out",
                   str(out / "report")],
        "export-csv": [*mike, "export", str(run), "--format", "csv", "--out",
                       str(out / "rows.csv")],
        "export-parquet": [*mike, "export", str(run), "--format", "parquet", "--out",
                           str(out / "rows.parquet")],
    }
    if args.only:
        phases = {args.only: phases[args.only]}
    if "merge" in phases:
        start = time.perf_counter()
        make_shards(run, out)
        shutil.rmtree(out / "merged", ignore_errors=True)
        print(f"shards cut in {time.perf_counter() - start:.0f} s")
    failed = False
    for name, command in phases.items():
        peak, seconds, code = measure(name, command, args.code)
        ok = code == 0 and peak <= LIMIT_MB
        failed |= not ok
        print(f"{name:15} peak_rss_mb={peak:6.0f} time_s={seconds:6.1f} "
              f"target <= {LIMIT_MB} MB: {'PASS' if ok else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
