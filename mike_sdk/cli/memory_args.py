"""The ``mike eval --edit-memory`` flags and the settings they make."""

from __future__ import annotations

import argparse

from mike_sdk.errors import ConfigError
from mike_sdk.memory.records import MINILM, MemorySettings


def add_memory_arguments(command: argparse.ArgumentParser) -> None:
    """``--edit-memory``, ``--memory-embedder``, ``--memory-k``, ``--memory-threshold``."""
    command.add_argument("--edit-memory", action="store_true",
                         help="put every test edit of a task in one memory and let each "
                         "question retrieve its edits (rows and summary record the hits; "
                         "docs/editing.md)")
    command.add_argument("--memory-embedder", default=MINILM, metavar="NAME",
                         help=f"--edit-memory: registered embedder (default {MINILM}; "
                         "multilingual-e5-small-q4 with the `multilingual` extra)")
    command.add_argument("--memory-k", type=int, default=1, metavar="K",
                         help="--edit-memory: most edits stated per prompt")
    command.add_argument("--memory-threshold", type=float, metavar="X",
                         help="--edit-memory: similarity below which no edit applies "
                         "(default: the embedder's)")


def memory_settings(args: argparse.Namespace) -> MemorySettings | None:
    """The settings of ``--edit-memory``, None without it (its other flags then refused)."""
    if not args.edit_memory:
        given = [f for f, v in (("--memory-embedder", args.memory_embedder != MINILM),
                                ("--memory-k", args.memory_k != 1),
                                ("--memory-threshold", args.memory_threshold is not None)) if v]
        if given:
            verb = "apply" if len(given) > 1 else "applies"
            raise ConfigError(f"{', '.join(given)} only {verb} with --edit-memory: add it, or "
                              "leave the flag out.")
        return None
    if getattr(args, "batch", False):
        raise ConfigError("--edit-memory does not work with --batch yet: run it live.")
    if args.memory_k < 1:
        raise ConfigError(f"--memory-k must be at least 1, got {args.memory_k}.")
    return MemorySettings(embedder=args.memory_embedder, k=args.memory_k,
                          threshold=args.memory_threshold)
