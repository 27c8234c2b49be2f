"""``mike view RUN_DIR [RUN_DIR ...]``: browse a run's answers in a local web app."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from mike_sdk.errors import ConfigError

__all__ = ["add_view_parser"]


def cmd_view(args: argparse.Namespace) -> int:
    from mike_sdk.report.runs import unique_labels
    from mike_sdk.web.server import LocalServer, is_loopback, require_web_extra

    require_web_extra("mike view")
    try:
        import duckdb  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"`mike view` needs {exc.name}: pip install 'mike-sdk[view]'") from None
    if not is_loopback(args.host):
        raise ConfigError(f"--host {args.host} is not a loopback address: `mike view` serves "
                          "your runs without authentication, so it only listens on this "
                          "machine (127.0.0.1, ::1 or localhost).")
    from mike_sdk.view.app import build_app
    from mike_sdk.view.cache import group_runs
    from mike_sdk.view.library import RunLibrary

    groups = group_runs(args.run_dirs)
    labels = unique_labels([g[0] if len(g) == 1 else g[0].parent / f"{g[0].name}+shards"
                            for g in groups], args.labels.split(",") if args.labels else None)
    # The summary page answers now; the rows' tables are built behind it (the page
    # shows an "Indexing" notice until they are ready).
    library = RunLibrary(groups, args.cache_dir, on_build=_building, on_done=_done)
    server = LocalServer(build_app(library, labels, host=args.host), host=args.host,
                         port=args.port)
    url = server.bind()
    library.start()
    print(f"mike view: {url}  (Ctrl-C stops it)", flush=True)
    if not args.no_open:
        import webbrowser

        webbrowser.open(url)
    # uvicorn re-raises the Ctrl-C it shut down on: here that is a normal stop.
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
    print("mike view: stopped", file=sys.stderr)
    return 2 if library.error else 0  # the rows could not be read: not a clean session


def _building(sources: list[Path], root: Path) -> None:
    print(f"mike view: reading {' + '.join(map(str, sources))} once into {root} in the "
          "background (about 12 CPU seconds per 500,000 rows; the summary is served "
          "meanwhile; later opens take under a second)", file=sys.stderr, flush=True)


def _done(error: str | None, seconds: float) -> None:
    if error:
        print(f"mike: error: {error}", file=sys.stderr, flush=True)
    else:
        print(f"mike view: rows ready in {seconds:.2f} s", file=sys.stderr, flush=True)


def add_view_parser(sub: Any) -> None:
    """Add ``mike view`` to the ``mike`` subcommands."""
    view = sub.add_parser("view", help="browse the answers of run folders in a local web app "
                          "(filter, sort, open a row's prompt, compare runs)")
    view.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders; the "
                      "shards of one run (--shard I/N) are shown as that run")
    view.add_argument("--port", type=int, default=8053, help="port (default 8053; 0 picks "
                      "a free one)")
    view.add_argument("--host", default="127.0.0.1", help="loopback address to listen on "
                      "(default 127.0.0.1)")
    view.add_argument("--no-open", action="store_true", help="do not open a browser")
    view.add_argument("--labels", help="comma-separated names of the runs (default: folder "
                      "names)")
    view.add_argument("--cache-dir", help="where the columnar copies of the runs go (default: "
                      "$MIKE_CACHE_DIR/view or the user cache)")
    view.set_defaults(func=cmd_view)
