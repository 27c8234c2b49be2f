"""Memory of a whole batch run: ``mike eval --batch`` (a subprocess, as a user runs it)
planning, packing, uploading, polling and collecting the 8-shot configuration against the
loopback batch server (``tests/batch_servers.py``: OpenAI's Batch API and Anthropic's
Message Batches, answering as the strict live stand-in does), then the same command again
(everything cached: planning and rows only).

Printed per provider and scale: requests, batches and the largest batch's bytes, the wall
time and the peak resident memory of each invocation (``wait4``'s ``ru_maxrss`` of that
process alone). Two scales give the memory's growth per request. Target (issue 17): a
full configuration under 500 MB.

    python bench/bench_batch_run.py [DATA_DIR] [--providers openai anthropic]
        [--limits 5 20] [--languages all] [--strategy 8-shot-metric-specific]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from batch_servers import BatchServer, Knobs
from bench_language_id import peak_kb
from strict_api import STRICT_ANTHROPIC_KEY, STRICT_OPENAI_KEY

MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-haiku-4-5"}
TARGET_MB = 500


def invoke(python: str, args: list[str], env: dict[str, str], cwd: Path) -> dict[str, object]:
    """Run one ``mike`` command; its exit code, wall time and peak RSS (MB).

    The peak is the process's own high-water mark (``VmHWM``), read while it runs: the
    ``ru_maxrss`` that ``wait4`` reports also counts the pages of this process (which
    holds the batch server's state) at the fork."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen([python, "-m", "mike_sdk.cli.main", *args], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=err_file)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, peak_kb(proc.pid))
            time.sleep(0.02)
        err_file.seek(0)
        err = err_file.read().decode(errors="replace")
    return {"exit": proc.returncode, "wall s": round(time.monotonic() - started, 1),
            "peak MB": round(peak / 1024), "tracebacks": err.count("Traceback"),
            "last stderr line": (err.strip().splitlines() or [""])[-1][:160]}


def one(python: str, data_dir: str, kind: str, limit: int | None, languages: str,
        strategy: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = BatchServer(root / "server", Knobs(validating_s=0.05, in_progress_s=0.5,
                                                     finalizing_s=0.05))
        url, key = ((f"{server.url}/v1", STRICT_OPENAI_KEY) if kind == "openai"
                    else (server.url, STRICT_ANTHROPIC_KEY))
        env = {**os.environ, "OPENAI_API_KEY": key, "ANTHROPIC_API_KEY": key}
        args = ["eval", "--backend", kind, "--model", MODELS[kind], "--base-url", url,
                "--strategy", strategy, "--languages", languages, "--no-likelihood",
                "--language-id", "script", "--cache-dir", str(root / "cache"),
                "--run-dir", str(root / "run"), "--no-progress", "--data-dir", data_dir,
                "--batch", *(["--limit", str(limit)] if limit else [])]
        try:
            first = invoke(python, args, env, root)
            again = invoke(python, args, env, root)
        finally:
            server.close()
        records: dict[str, dict[str, object]] = {}
        log = root / "run" / "batches.jsonl"
        for line in log.read_text().splitlines() if log.exists() else []:
            record = json.loads(line)
            records[record["local_id"]] = record  # the last line of each batch wins
        summary = root / "run" / "summary.json"
        totals = json.loads(summary.read_text())["totals"] if summary.exists() else {}
    return {"provider": kind, "limit": limit, "languages": languages,
            "requests": sum(int(r.get("requests") or 0) for r in records.values()),
            "batches": len(records),
            "largest batch MB": round(max((int(r.get("bytes") or 0)
                                           for r in records.values()), default=0) / 2**20, 1),
            "rows": totals.get("rows"), "submit+collect": first, "re-run (cached)": again}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default=None)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--providers", nargs="*", default=["openai", "anthropic"])
    parser.add_argument("--limits", nargs="*", type=int, default=[5, 20],
                        help="items per task and language (0: all)")
    parser.add_argument("--languages", default="all")
    parser.add_argument("--strategy", default="8-shot-metric-specific")
    args = parser.parse_args()
    # Absolute: the commands start in their own temporary folders.
    data_dir = str(Path(args.data_dir or os.environ.get("MIKE_DATA_DIR")
                        or "../shared/bmike53").resolve())
    for kind in args.providers:
        for limit in args.limits:
            print(json.dumps(one(args.python, data_dir, kind, limit or None, args.languages,
                                 args.strategy)), flush=True)
    print(f"target: each invocation under {TARGET_MB} MB")


if __name__ == "__main__":
    main()
