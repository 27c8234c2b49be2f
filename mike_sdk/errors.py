"""Errors the SDK raises on bad input: each names the problem and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import ValidationError


class MikeError(Exception):
    """Base class for every error the SDK raises on purpose."""


class DataError(MikeError):
    """The benchmark data is missing, unreadable or malformed."""


class ConfigError(MikeError):
    """A configuration value is invalid (unknown name, bad option, conflicting run)."""


class PluginError(ConfigError):
    """An installed plugin (an entry point) failed to load.

    ``reason`` is the underlying error in one line, for listings that show the plugin
    as broken instead of failing.
    """

    def __init__(self, message: str, *, name: str, reason: str) -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason


class BackendError(MikeError):
    """A backend failed in a way that retrying will not fix."""


def closest_first(name: str, valid: Iterable[str]) -> list[str]:
    """Valid names ordered by similarity to ``name``, closest first.

    >>> closest_first("zsre", ["counterfact", "zsre", "wikifactdiff"])[0]
    'zsre'
    """
    def squash(text: str) -> str:
        return text.lower().replace("-", "").replace("_", "")

    def similarity(choice: str) -> tuple[bool, float]:
        a, b = squash(name), squash(choice)
        # A name that contains what was typed (or the reverse) beats edit distance.
        return (bool(a) and (a in b or b in a), difflib.SequenceMatcher(None, a, b).ratio())

    return sorted(set(valid), key=lambda c: (similarity(c), c), reverse=True)


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> ConfigError:
    """An error for an unknown ``kind`` called ``name`` that lists the valid names."""
    ordered = closest_first(name, valid)
    hint = f" Did you mean {ordered[0]!r}?" if ordered else ""
    return ConfigError(f"Unknown {kind} {name!r}.{hint} Valid names: {', '.join(ordered)}.")


def problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, what is wrong with the value given)`` per problem of a validation error.

    >>> from pydantic import BaseModel, PositiveInt
    >>> class Options(BaseModel):
    ...     limit: PositiveInt
    >>> try:
    ...     Options(limit=0)
    ... except ValidationError as exc:
    ...     problems(exc)
    [('limit', 'Input should be greater than 0 (got 0)')]
    """
    out = []
    for problem in exc.errors(include_url=False):
        where = ".".join(str(p) for p in problem["loc"]) or "options"
        given = problem.get("input")
        shown = f" (got {given!r})" if isinstance(given, int | float | str) else ""
        out.append((where, f"{problem['msg']}{shown}"))
    return out


def invalid_options(what: str, exc: ValidationError, secrets: Iterable[str] = ()) -> ConfigError:
    """One line per option problem, joined: ``Invalid options for the 'mock' backend:
    answr: Extra inputs are not permitted (got 'fixed').`` (secrets replaced by ``***``)."""
    text = "; ".join(f"{where}: {what_is_wrong}" for where, what_is_wrong in problems(exc))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return ConfigError(f"Invalid options for {what}: {text}.")


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``: enough to recognise an error in one line.

    >>> one_line(ValueError("bad value\\nmore detail"))
    'ValueError: bad value'
    """
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
