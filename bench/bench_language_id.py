"""Language identification against the request rate: lingua versus scripts only.

``mike eval`` (a subprocess) runs en>de zsre against the billing server answering after
300 ms, at concurrency 32, with ``--language-id lingua`` and then ``script``, for each
run size. Each run has a fresh cache (so lingua identifies every answer). Printed per
run: the request rate (billed requests over the time from the first to the last one),
the wall time of the command, and the peak resident memory of the run's process and of
any process it started (the lingua worker).

    python bench/bench_language_id.py [DATA_DIR] [--python PYTHON] [--sizes 400 2000]
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

from billing_server import MODEL, BillingServer, price_file_text

#: Short answers in several Latin-script languages: lingua has real work on each.
ANSWERS = ("Paris", "Berlin ist die Hauptstadt", "la ville de Paris", "Vereinigte Staaten",
           "the United States", "Hauptstadt", "Königreich", "la France", "Deutschland",
           "the capital city", "Rome", "der Fluss", "el río", "New York City", "Gmail",
           "la lingua italiana", "het Verenigd Koninkrijk", "Suomi", "Microsoft", "1998")


def peak_kb(pid: int) -> int:
    """Peak resident memory (VmHWM) of a live process, in kB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def one_run(python: str, data_dir: str, language_id: str, requests: int) -> dict[str, object]:
    server = BillingServer()
    server.knobs.latency_s, server.knobs.answers = 0.3, ANSWERS
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "prices.json").write_text(price_file_text())
        command = [python, "-m", "mike_sdk.cli.main", "eval", "--backend", "openai",
                   "--model", MODEL, "--base-url", f"{server.url}/v1", "--tasks", "zsre",
                   "--languages", "de", "--limit", str(requests // 4), "--no-likelihood",
                   "--language-id", language_id, "--strategy", "zero-shot",
                   "--prices", str(root / "prices.json"), "--cache-dir", str(root / "cache"),
                   "--run-dir", str(root / "run"), "--no-progress", "--concurrency", "32",
                   "--data-dir", data_dir]
        started = time.monotonic()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, cwd=root, env={**os.environ, "OPENAI_API_KEY": "k"})
        main_kb, worker_kb = 0, 0
        first = last = None
        while proc.poll() is None:
            main_kb = max(main_kb, peak_kb(proc.pid))
            for child in children(proc.pid):
                worker_kb = max(worker_kb, peak_kb(child))
            time.sleep(0.05)
        wall = time.monotonic() - started
        err = proc.stderr.read() if proc.stderr else ""
        summary = json.loads((root / "run" / "summary.json").read_text())
    times = server.billed_at
    server.close()
    if times:
        first, last = times[0], times[-1]
    rate = (len(times) - 1) / (last - first) if first is not None and last and last > first \
        else 0.0
    return {"language id": language_id, "requests": len(times), "exit": proc.returncode,
            "req/s": round(rate, 1), "wall s": round(wall, 1),
            "peak MB (run)": round(main_kb / 1024), "peak MB (worker)": round(worker_kb / 1024),
            "method": summary["language_detection"]["method"],
            "tracebacks": err.count("Traceback")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default=None)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--sizes", nargs="*", type=int, default=[400, 2000])
    args = parser.parse_args()
    # Absolute: each run's command starts in its own temporary folder.
    data_dir = str(Path(args.data_dir or os.environ.get("MIKE_DATA_DIR")
                        or "../shared/bmike53").resolve())
    for size in args.sizes:
        for language_id in ("lingua", "script"):
            print(json.dumps(one_run(args.python, data_dir, language_id, size)), flush=True)


if __name__ == "__main__":
    main()
