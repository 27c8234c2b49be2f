"""Optional packages: checked before anything runs, so a missing one is one clear line
naming the ``mike-sdk`` extra that installs it, never a traceback from deep in a run."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from mike_sdk.errors import ConfigError

__all__ = ["MissingExtra", "install_hint", "missing_modules", "require_extra"]


class MissingExtra(ConfigError):
    """An optional package is not installed; the message names the extra to install."""


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The modules of ``modules`` that are not installed (nothing is imported).

    >>> missing_modules(["json", "surely_not_installed_here"])
    ['surely_not_installed_here']
    """
    gone = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # its parent package is missing, or blocked
            found = False
        if not found:
            gone.append(name)
    return gone


def install_hint(extra: str) -> str:
    """The command that installs an extra: ``pip install 'mike-sdk[api]'``."""
    return f"pip install 'mike-sdk[{extra}]'"


def require_extra(what: str, modules: Iterable[str], extra: str, *, instead: str = "") -> None:
    """Raise :class:`MissingExtra` when one of ``modules`` is not installed.

    ``what`` names what needs them (``The 'openai' backend``); ``instead`` adds another
    way out (``, or use --format csv``).

    >>> try:
    ...     require_extra("The 'demo' backend", ["not_installed_here"], "api")
    ... except MissingExtra as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    The 'demo' backend needs not_installed_here, which is not installed:
    pip install 'mike-sdk[api]'.
    """
    gone = missing_modules(modules)
    if gone:
        verb = "is" if len(gone) == 1 else "are"
        raise MissingExtra(f"{what} needs {' and '.join(gone)}, which {verb} not installed: "
                           f"{install_hint(extra)}{instead}.")
