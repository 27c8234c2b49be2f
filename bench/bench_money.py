"""What a run pays against what it reports, under the faults of issue 17.

Each scenario runs ``mike eval`` (a subprocess, as a user would) against the billing
server (``tests/billing_server.py``: an OpenAI-wire server on loopback that bills every
200 it sends, whether or not the client lives to read it) and prints, per scenario: the
invocations and their exit codes, rows written, calls billed against distinct requests
(paid twice = the difference), USD billed against the USD the run's summary reports,
and the tracebacks seen on stderr.

    python bench/bench_money.py [DATA_DIR] [--python PYTHON] [--only NAME ...]

``--python`` runs the scenarios with another interpreter (another checkout's venv: the
figures before a change).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from billing_server import MODEL, BillingServer, price_file_text

from mike_sdk.runfolder.members import member
from mike_sdk.runfolder.rundir import read_row_ids, results_file, row_lines

KEY = "bench-key-SECRET"


class Scenario:
    """One server, one cache and run folder, and the command that runs against them."""

    def __init__(self, python: str, data_dir: str, root: Path, server: BillingServer,
                 limit: int, concurrency: int, *extra: str, url: str | None = None) -> None:
        self.python, self.root, self.server = python, root, server
        self.run_dir = root / "run"
        prices = root / "prices.json"
        prices.write_text(price_file_text())
        self.args = ["eval", "--backend", "openai", "--model", MODEL,
                     "--base-url", url or f"{server.url}/v1", "--tasks", "zsre",
                     "--languages", "de", "--limit", str(limit), "--no-likelihood",
                     "--language-id", "script", "--strategy", "zero-shot",
                     "--prices", str(prices), "--cache-dir", str(root / "cache"),
                     "--run-dir", str(self.run_dir), "--no-progress",
                     "--concurrency", str(concurrency), "--data-dir", data_dir, *extra]
        self.codes: list[int] = []
        self.stderr = ""

    def start(self) -> subprocess.Popen[str]:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        # cwd: not a checkout, so that -m imports the interpreter's own mike_sdk. SIGINT
        # restored: a bench started in the background (nohup, &) has it ignored.
        return subprocess.Popen([self.python, "-m", "mike_sdk.cli.main", *self.args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=self.root,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def finish(self, proc: subprocess.Popen[str]) -> int:
        _, err = proc.communicate()
        self.stderr += err
        self.codes.append(proc.returncode)
        return proc.returncode

    def run(self) -> int:
        return self.finish(self.start())

    def rows(self) -> int:
        return len(read_row_ids(self.run_dir)) if self.run_dir.is_dir() else 0

    def reported(self) -> float | None:
        summary = self.run_dir / "summary.json"
        if not summary.exists():
            return None
        value = json.loads(summary.read_text())["totals"].get("cost_usd")
        return float(value) if value is not None else None

    def figures(self, **more: Any) -> dict[str, Any]:
        bill = self.server.bill
        reported = self.reported()
        return {"invocations": len(self.codes), "exit codes": self.codes, "rows": self.rows(),
                "billed calls": bill.calls, "distinct": bill.distinct(),
                "paid twice": bill.twice(), "billed $": round(bill.usd, 6),
                "reported $": None if reported is None else round(reported, 6),
                "tracebacks": self.stderr.count("Traceback"), **more}


def refusals(s: Scenario) -> dict[str, Any]:
    """10% of prompts refused (400) at once, answers after 3 s, 64 in flight."""
    s.server.knobs.refuse, s.server.knobs.latency_s = 0.1, 3.0
    while s.run() == 2 and len(s.codes) < 25:
        pass
    return s.figures()


def malformed(s: Scenario) -> dict[str, Any]:
    """2% of answers are 200s that are no completion (cut JSON, HTML, error object)."""
    s.server.knobs.malformed, s.server.knobs.latency_s = 0.02, 0.01
    s.run()
    return s.figures(statuses=dict(s.server.statuses))


def kills(s: Scenario) -> dict[str, Any]:
    """kill -9 three times and Ctrl-C once at concurrency 64 (300 ms answers), then run
    to the end."""
    s.server.knobs.latency_s = 0.3
    at_kill, billed_after, journal = [], [], []
    for sig in (signal.SIGKILL, signal.SIGKILL, signal.SIGKILL, signal.SIGINT):
        target = s.server.bill.calls + 150
        proc = s.start()
        while s.server.bill.calls < target and proc.poll() is None:
            time.sleep(0.01)
        at_kill.append(s.server.in_flight)
        billed = s.server.bill.calls
        proc.send_signal(sig)
        s.finish(proc)
        time.sleep(1.0)  # what the server still had (or had queued) is billed by now
        billed_after.append(s.server.bill.calls - billed)
        journal.append(unlanded(s.run_dir))
    s.run()
    return s.figures(**{"in flight at each stop (server)": at_kill,
                        "billed after each stop": billed_after,
                        "in flight at each stop (client journal)": journal})


def unlanded(run_dir: Path) -> int | None:
    """Requests the run's journal says were sent and its ledger never saw land (None:
    a version without the journal)."""
    journal, spend = run_dir / "sending.jsonl", run_dir / "spend.jsonl"
    if not journal.exists():
        return None if not spend.exists() else 0
    lines = journal.read_text().split()
    refused = {line[1:] for line in lines if line.startswith("-")}
    paid = {json.loads(line)[0] for line in spend.read_text().splitlines()} \
        if spend.exists() else set()
    return len({k for k in lines if not k.startswith("-") and k not in refused
                and k[:16] not in paid})


def cap(s: Scenario, usage: bool, tokens_per_byte: float, usd: float) -> dict[str, Any]:
    """``--max-cost`` against a server that reports no usage, or bills more tokens than
    the prompt has bytes."""
    s.args += ["--max-cost", str(usd)]
    s.server.knobs.usage, s.server.knobs.tokens_per_byte = usage, tokens_per_byte
    s.server.knobs.latency_s = 0.02
    s.run()
    return s.figures(cap=usd, **{"billed / cap": round(s.server.bill.usd / usd, 3)},
                     said=last_line(s.stderr))


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("mike:")]
    return lines[-1][:160] if lines else ""


def appended(s: Scenario) -> dict[str, Any]:
    """Another model's rows replace the last 20 of a finished 320-row run."""
    s.run()
    before = json.loads((s.run_dir / "summary.json").read_text())["results"]
    other_dir = s.root / "other"
    other = [*s.args]
    other[other.index("--run-dir") + 1] = str(other_dir)
    other[other.index("--model") + 1] = "other-model"
    subprocess.run([s.python, "-m", "mike_sdk.cli.main", *other], capture_output=True,
                   env={**os.environ, "OPENAI_API_KEY": KEY}, check=False, cwd=s.root)
    own = list(row_lines(s.run_dir))
    foreign = {json.loads(line)["id"]: line for line in row_lines(other_dir)}
    swapped = [foreign[json.loads(line)["id"]] for line in own[-20:]]
    results_file(s.run_dir).write_bytes(member(b"".join([*own[:-20], *swapped])))
    s.run()
    after = json.loads((s.run_dir / "summary.json").read_text())["results"]
    return s.figures(**{"summary changed": after != before, "said": last_line(s.stderr)})


def credentials(s: Scenario, transport: str) -> dict[str, Any]:
    """A base URL with user:password@, a server that quotes the Authorization header."""
    s.server.knobs.refuse, s.server.knobs.echo_auth = 1.0, True
    s.args += ["--backend-option", f"transport={transport}"]
    s.run()
    basic = base64.b64encode(b"user:PASSWORD").decode()
    files = [p for p in s.root.rglob("*") if p.is_file()]
    leaks = [p.name for p in files if b"PASSWORD" in p.read_bytes()
             or basic.encode() in p.read_bytes()]
    leaked = "PASSWORD" in s.stderr or basic in s.stderr
    return s.figures(**{"secret in stderr": leaked, "secret in files": leaks,
                        "said": last_line(s.stderr)})


def tampered(s: Scenario) -> dict[str, Any]:
    """An answer edited in cache.db after a run; the run folder started again."""
    s.run()
    with sqlite3.connect(s.root / "cache" / "cache.db") as db:
        key, value = db.execute("SELECT key, value FROM Cache LIMIT 1").fetchone()
        db.execute("UPDATE Cache SET value = ? WHERE key = ?",
                   (value.replace(b"Paris", b"Rome!"), key))
    subprocess.run(["rm", "-rf", str(s.run_dir)], check=True)
    s.run()
    rows = b"".join(row_lines(s.run_dir)).decode()
    return s.figures(**{"rows with the edited answer": rows.count("Rome!")})


def no_languages(s: Scenario) -> dict[str, Any]:
    s.args[s.args.index("--languages") + 1] = ","
    s.run()
    return s.figures(said=last_line(s.stderr))


SCENARIOS: dict[str, tuple[int, int, Callable[[Scenario], dict[str, Any]]]] = {
    "refusals": (40, 64, refusals),
    "malformed": (100, 16, malformed),
    "kills": (250, 64, kills),
    "cap-no-usage": (100, 16, lambda s: cap(s, False, 1.0, 0.02)),
    "cap-overbilled": (100, 16, lambda s: cap(s, True, 2.0, 0.02)),
    "appended-rows": (80, 16, appended),
    "credentials-httpx": (2, 4, lambda s: credentials(s, "httpx")),
    "credentials-aiohttp": (2, 4, lambda s: credentials(s, "aiohttp")),
    "tampered-cache": (5, 4, tampered),
    "no-languages": (5, 4, no_languages),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default=None)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--only", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    # Absolute: each scenario's command starts in its own temporary folder.
    data_dir = str(Path(args.data_dir or os.environ.get("MIKE_DATA_DIR")
                        or "../shared/bmike53").resolve())
    for name in args.only:
        limit, concurrency, scenario = SCENARIOS[name]
        server = BillingServer(seed=1)
        url = None
        if name.startswith("credentials"):
            url = server.url.replace("//", "//user:PASSWORD@") + "/v1"
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            figures = scenario(Scenario(args.python, data_dir, Path(tmp), server, limit,
                                        concurrency, url=url))
        server.close()
        figures["wall s"] = round(time.monotonic() - started, 1)
        print(f"{name}: {json.dumps(figures)}", flush=True)


if __name__ == "__main__":
    main()
