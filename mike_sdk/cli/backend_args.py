"""The flags that choose and configure a backend, shared by ``mike eval`` and
``mike reproduce``, and the backend they build."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from mike_sdk.backend import BACKENDS, Backend
from mike_sdk.errors import ConfigError

OPTION_HELP = ("an option of {what}, repeatable; values read as numbers, true/false or none "
               "where they look like one")


def add_backend_arguments(command: argparse.ArgumentParser) -> None:
    """``--backend``, ``--model``, ``--backend-option``, ``--base-url``, ``--batch-size``
    and ``--device``."""
    command.add_argument("--backend", default="hf", help="backend name (see `mike backends`)")
    command.add_argument("--model", help="model name or local folder (hf: default is the "
                         "embedded Gemma 3 270M)")
    command.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                         help=OPTION_HELP.format(what="the backend (see docs/backends.md)"))
    command.add_argument("--base-url", action="append", default=[], metavar="URL",
                         help="API root of an OpenAI-compatible server; repeat it for a "
                         "fleet of servers of the same model (see docs/scaling.md)")
    command.add_argument("--batch-size",
                         help="requests per backend batch; hf: 'auto' chooses it from free "
                         "memory")
    command.add_argument("--device", help="hf: cpu, cuda, cuda:1, ...")


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parse as int, float, true/false, none or stay strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"Option {pair!r} must look like key=value.")
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        elif raw.lower() in ("none", "null"):
            value = None
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        out[key.replace("-", "_")] = value
    return out


def batch_size(text: str) -> int | str:
    """``--batch-size``: a whole number of at least 1, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        size = int(text)
    except ValueError:
        raise ConfigError(f"--batch-size takes a whole number or 'auto', got {text!r}.") \
            from None
    if size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {size}.")
    return size


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--backend-option`` pairs plus the ``--base-url``, ``--batch-size`` and
    ``--device`` shortcuts."""
    options = parse_options(args.backend_option)
    if args.batch_size is not None:
        options["batch_size"] = batch_size(args.batch_size)
    if args.device:
        options["device"] = args.device
    if args.base_url:
        if "base_url" in options:
            raise ConfigError("give --base-url or --backend-option base_url=..., not both.")
        options["base_url"] = args.base_url[0] if len(args.base_url) == 1 \
            else tuple(args.base_url)
    return options


def build_backend(name: str, model: str | None, options: dict[str, Any]) -> Backend:
    """A registered backend from CLI arguments."""
    if model is not None:
        options = {"model": model, **options}
    try:
        return BACKENDS.create(name, **options)
    except TypeError as exc:
        raise ConfigError(f"Backend {name!r} rejected its options {sorted(options)}: {exc}. "
                          "Check --backend-option names.") from None
