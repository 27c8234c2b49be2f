"""``mike export RUN_DIR``: the run's rows as one flat CSV or Parquet table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.export import export

__all__ = ["add_export_parser"]


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.run_dir) / f"results.{args.format}"
    if args.out and not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist; create it "
                          "or choose another --out.")
    count = export(args.run_dir, out, args.format, prompts=args.prompts)
    print(f"{count} rows written to {out}")
    return 0


def add_export_parser(sub: Any) -> None:
    """Add ``mike export`` to the ``mike`` subcommands."""
    ex = sub.add_parser("export", help="write a run's rows as one flat table (CSV, Parquet) "
                        "for pandas, polars or DuckDB")
    ex.add_argument("run_dir", metavar="RUN_DIR", help="the run folder")
    ex.add_argument("--format", choices=("csv", "parquet"), default="csv",
                    help="csv (default) or parquet (needs pip install 'mike-sdk[export]')")
    ex.add_argument("--out", help="the file to write (default: RUN_DIR/results.FORMAT)")
    ex.add_argument("--prompts", action="store_true", help="add the prompt or chat messages "
                    "of each row (large: the demonstrations repeat)")
    ex.set_defaults(func=cmd_export)
