"""``mike strategies`` and ``mike backends``: what is registered, and what hosted models
accept (``--models``) and where OpenAI-compatible providers are (``--presets``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mike_sdk.backend import BACKENDS
from mike_sdk.errors import PluginError
from mike_sdk.extras import install_hint, missing_modules
from mike_sdk.providers.presets import presets
from mike_sdk.providers.profiles import ProfileTable
from mike_sdk.registry import Registry
from mike_sdk.strategy import STRATEGIES

__all__ = ["cmd_backends", "cmd_strategies", "profile_rows"]


def _list(registry: Registry[Any], width: int) -> int:
    """One line per name; a plugin that fails to load is shown as broken, not fatal."""
    broken = []
    for name, entry in registry.entries():
        if isinstance(entry, PluginError):
            print(f"{name:{width}} [broken plugin] {entry.reason}")
            broken.append(entry)
        else:
            doc = (entry.__doc__ or "").strip().replace("``", "").splitlines()
            gone = missing_modules(getattr(entry, "needs", ()))
            needs = (f"[not installed: {install_hint(getattr(entry, 'needs_extra', ''))}] "
                     if gone else "")
            print(f"{name:{width}} {needs}{doc[0] if doc else ''}")
    for error in broken:
        print(f"mike: warning: {error}", file=sys.stderr)
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    return _list(STRATEGIES, 26)


PROFILE_COLUMNS = ("profile", "models", "temperature", "stop", "prefill", "token limit",
                   "reasoning", "efforts (lowest first)", "API version")


def profile_rows(table: ProfileTable) -> list[tuple[str, ...]]:
    """One row of :data:`PROFILE_COLUMNS` per profile, in match order."""
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    rows: list[tuple[str, ...]] = []
    for p in table.entries:
        models = _shorten(p.models) + (f" (not {_shorten(p.except_models)})"
                                       if p.except_models else "")
        reasoning = p.reasoning + (" (on by default)" if p.thinks_by_default else "")
        rows.append((p.name, models, yes(p.sampling), yes(p.stop), yes(p.prefill),
                     p.token_limit, reasoning, ", ".join(p.efforts) or "-",
                     p.api_version or "SDK default"))
    return rows


def _shorten(patterns: Sequence[str], width: int = 40) -> str:
    shown = list(patterns)
    while len(shown) > 1 and len(", ".join(shown)) > width:
        shown.pop()
    more = len(patterns) - len(shown)
    return ", ".join(shown) + (f" +{more} more" if more else "")


def _print_table(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    for row in (columns, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def cmd_backends(args: argparse.Namespace) -> int:
    if args.models:
        _print_table(PROFILE_COLUMNS, profile_rows(ProfileTable.load(args.profiles)))
        print("\nFirst match wins; entries from a profile file (--profiles or "
              "$MIKE_PROFILES) come first.")
        return 0
    if args.presets:
        rows = [(name, p.base_url, p.key_env + (" (optional)" if p.key_optional else ""),
                 p.note) for name, p in presets().items()]
        _print_table(("preset", "base URL", "key variable", "note"), rows)
        print("\nUse: --backend openai --backend-option preset=NAME --model MODEL")
        return 0
    return _list(BACKENDS, 18)
