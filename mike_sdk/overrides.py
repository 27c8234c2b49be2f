"""The user's own tables (prices, model profiles): a JSON or TOML file named by an
option, else by an environment variable, that extends what the package ships."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mike_sdk.errors import ConfigError

__all__ = ["read_override"]


def read_override(path: str | Path | None, env: str, what: str, option: str) -> Any:
    """The parsed file at ``path`` (else at ``$env``), or None when neither names one.

    ``what`` and ``option`` name the file in errors: ``Price file X not found (from
    --prices or $MIKE_PRICES)``. Syntax errors surface as :class:`ValueError` (the
    caller knows the expected shape and says it).
    """
    source = path if path is not None else os.environ.get(env) or None
    if source is None:
        return None
    file = Path(source).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {file} not found (from {option} or ${env}).") from None
    if file.suffix.lower() == ".toml":
        import tomllib

        return tomllib.loads(text)
    return json.loads(text)
