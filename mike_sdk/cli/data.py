"""``mike data download`` and ``mike data info``: get the benchmark, count what it holds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mike_sdk.data.benchmark import TASK_FILES, Benchmark
from mike_sdk.data.languages import LANGUAGES
from mike_sdk.records import TASKS

__all__ = ["add_data_parser"]


def cmd_data_download(args: argparse.Namespace) -> int:
    from mike_sdk.data.download import default_data_dir, download_data

    dest = Path(args.dest) if args.dest else default_data_dir()
    report = download_data(dest, base_url=args.base_url, files=args.files or None,
                           progress=not args.no_progress)
    print(f"{len(report.downloaded)} files downloaded ({report.bytes_downloaded} bytes), "
          f"{len(report.skipped)} already present, into {report.dest}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from mike_sdk.report.table import format_table

    bench = Benchmark(args.data_dir)
    print(f"BMIKE-53 at {bench.root}")
    rows = [["task", "language", "items", "scorable", "skipped"]]
    for task in args.tasks.split(",") if args.tasks else TASKS:
        for lang in LANGUAGES:
            items = bench.items(task, lang)
            total = len(items.items) + items.skipped
            rows.append([task, lang, str(total), str(len(items.items)), str(items.skipped)])
    print(format_table(rows))
    return 0


def add_data_parser(sub: Any) -> None:
    """Add ``mike data`` to the ``mike`` subcommands."""
    data = sub.add_parser("data", help="get or inspect the benchmark data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dl = data_sub.add_parser("download", help="download the pinned official files")
    dl.add_argument("--dest", help="folder (default: the user cache, or $MIKE_CACHE_DIR)")
    dl.add_argument("--base-url", help="mirror to download from")
    dl.add_argument("--files", nargs="*", help="only these files (paths under data/)")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    dl.set_defaults(func=cmd_data_download)
    info = data_sub.add_parser("info", help="items and scorable items per task and language")
    info.add_argument("--data-dir", help="BMIKE-53 folder (default: $MIKE_DATA_DIR, then "
                      "cache)")
    info.add_argument("--tasks", help=f"comma list of {', '.join(TASK_FILES)}")
    info.set_defaults(func=cmd_data_info)
