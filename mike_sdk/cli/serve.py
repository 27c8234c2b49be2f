"""``mike serve``: an OpenAI-compatible server in front of a backend with an edit memory.

Wired into :mod:`mike_sdk.cli.main` with :func:`add_parser`. The bearer token comes from
an environment variable (``--token-env``, default ``MIKE_SERVE_TOKEN``), never from the
command line, where other users of the machine could read it.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mike_sdk.calls.cache import ResponseCache
from mike_sdk.cli.backend_args import add_backend_arguments, backend_options, build_backend
from mike_sdk.errors import ConfigError
from mike_sdk.memory.edited import EditedModel
from mike_sdk.memory.store import EditMemory
from mike_sdk.records import TASKS

DEFAULT_EMBEDDER = "multilingual-e5-small-q4"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``mike`` sub-command parsers."""
    sp = sub.add_parser("serve", help="an OpenAI-compatible server that applies the edits of "
                        "an edit memory to every question (docs/editing.md)")
    add_backend_arguments(sp)
    sp.add_argument("--memory", required=True, metavar="FILE",
                    help="the edit memory (a SQLite file; created if missing)")
    sp.add_argument("--import", dest="import_file", metavar="FILE.jsonl",
                    help="add the edits of a JSONL file first (ids already there are updated)")
    sp.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                    help=f"registered embedder name (default {DEFAULT_EMBEDDER}: the "
                    "`multilingual` extra; all-MiniLM-L6-v2 is English-only)")
    sp.add_argument("--k", type=int, default=1, help="most edits stated per prompt")
    sp.add_argument("--threshold", type=float,
                    help="similarity below which no edit applies (default: the embedder's)")
    sp.add_argument("--strategy", default="zero-shot",
                    help="prompt strategy (demonstration strategies need BMIKE-53 data)")
    sp.add_argument("--task", default="zsre", choices=TASKS,
                    help="demonstration pool of demonstration strategies")
    sp.add_argument("--language", default="en", help="language of questions whose request "
                    "names none (the `language` field); demonstrations are shown in it")
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sp.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    sp.add_argument("--token-env", default="MIKE_SERVE_TOKEN", metavar="NAME",
                    help="environment variable holding the bearer token clients must send "
                    "(required off loopback)")
    sp.add_argument("--cache-dir", help="response cache folder (default: the user cache)")
    sp.set_defaults(func=cmd_serve)
    return sp  # type: ignore[no-any-return]


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from mike_sdk.web.server import LocalServer, is_loopback, require_web_extra

    require_web_extra("mike serve")
    from mike_sdk.serve.app import EditServer

    token = os.environ.get(args.token_env) or None
    if token is None and not is_loopback(args.host):
        raise ConfigError(f"--host {args.host} is reachable from other machines: set a bearer "
                          f"token in ${args.token_env} first, or serve on 127.0.0.1.")
    if args.k < 1:
        raise ConfigError(f"--k must be at least 1, got {args.k}.")
    memory = EditMemory(args.memory, embedder=args.embedder, threshold=args.threshold)
    # Load the embedder and the index now: a missing extra fails here, not in a request.
    memory.search("warm-up", k=1)
    if args.import_file:
        added = memory.import_jsonl(args.import_file, replace=True)
        print(f"mike serve: imported {added} edits from {args.import_file}")
    backend = build_backend(args.backend, args.model, backend_options(args))
    edited = EditedModel(backend, memory, strategy=args.strategy, k=args.k,
                         threshold=args.threshold, task=args.task,
                         cache=ResponseCache(args.cache_dir))
    server = LocalServer(EditServer(edited, token=token, language=args.language).app(),
                         host=args.host, port=args.port)
    url = server.bind()
    # The URL line is what scripts wait for (flushed: stdout may be a pipe).
    print(f"mike serve: {url}/v1 ({len(memory)} edits in {args.memory}, embedder "
          f"{memory.embedder.name}, threshold {memory.threshold}; bearer token "
          f"{'required' if token else 'off'})", flush=True)
    try:
        server.serve()
    finally:
        memory.close()
    return 0
