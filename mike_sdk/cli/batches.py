"""``mike batches RUN_DIR`` (the run's provider batches) and ``mike batches cancel RUN_DIR``.

Wired into :mod:`mike_sdk.cli.main` with :func:`add_parser`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mike_sdk.batch.progress import describe
from mike_sdk.batch.records import BATCHES, BatchLog, BatchRecord
from mike_sdk.errors import ConfigError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``batches`` to the ``mike`` sub-command parsers."""
    bp = sub.add_parser("batches", help="list a run's provider batches (state, counts, age, "
                        "cost); `mike batches cancel RUN_DIR` cancels those in flight",
                        usage="mike batches [cancel] RUN_DIR [--backend-option KEY=VALUE]")
    bp.add_argument("words", nargs="+", metavar="[cancel] RUN_DIR")
    bp.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                    help="cancel: backend options (e.g. base_url=...; the key comes from "
                    "the provider's environment variable)")
    bp.set_defaults(func=cmd_batches)
    return bp  # type: ignore[no-any-return]


def cmd_batches(args: argparse.Namespace) -> int:
    """``mike batches [cancel] RUN_DIR``."""
    words: list[str] = args.words
    if len(words) == 2 and words[0] == "cancel":
        return cmd_cancel(Path(words[1]), args.backend_option)
    if len(words) != 1:
        raise ConfigError("usage: mike batches RUN_DIR, or mike batches cancel RUN_DIR.")
    return cmd_list(Path(words[0]))


def _records(run_dir: Path) -> list[BatchRecord]:
    if not (run_dir / BATCHES).exists():
        raise ConfigError(f"{run_dir / BATCHES} does not exist: {run_dir} has no batches "
                          "(`mike eval --batch` writes it).")
    return list(BatchLog(run_dir).read().values())


def age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def batch_table(records: Sequence[BatchRecord], now: float | None = None) -> str:
    """The table ``mike batches`` prints."""
    from mike_sdk.report.table import format_table

    now = time.time() if now is None else now
    rows = [["batch", "provider id", "state", "done", "errored", "expired", "total", "age",
             "cost"]]
    for r in records:
        cost = (f"${r.cost_usd:.4f}" if r.cost_usd is not None else
                f"<= ${r.estimate_usd:.4f}" if r.estimate_usd is not None else "-")
        rows.append([r.local_id, r.provider_id or "-", r.state
                     + (" (cancelled by user)" if r.canceled_by_user else ""),
                     str(r.counts.done), str(r.counts.errored),
                     str(r.counts.expired + r.counts.canceled), str(r.requests),
                     age(now - r.created_at), cost])
    return format_table(rows)


def cmd_list(run_dir: Path) -> int:
    records = _records(run_dir)
    print(batch_table(records))
    print(describe(records))
    return 0


def cmd_cancel(run_dir: Path, options: Sequence[str]) -> int:
    from mike_sdk.backend import BACKENDS
    from mike_sdk.batch.cancel import cancel_batches
    from mike_sdk.batch.provider import provider_for
    from mike_sdk.calls.client import run_sync
    from mike_sdk.cli.backend_args import parse_options
    from mike_sdk.runfolder.rundir import read_manifest

    records = [r for r in _records(run_dir) if not r.ended]
    if not records:
        print(f"No batch of {run_dir} is in flight.")
        return 0
    manifest = read_manifest(run_dir)
    first = records[0]
    given = parse_options(options)
    kind = manifest.backend.kind
    built: dict[str, Any] = {"model": first.model}
    if first.base_url is not None:
        built["base_url"] = first.base_url
    backend = BACKENDS.create(kind, **{**built, **given})
    provider = provider_for(backend)
    cancelled = run_sync(backend, cancel_batches(provider, run_dir))
    for record in cancelled:
        print(f"{record.local_id} ({record.provider_id}): {record.state}")
    print(f"{len(cancelled)} batches cancelled; their answered requests are collected by "
          "the next `mike eval --batch` with the same command, the others sent again.")
    return 0
