"""The ``mike`` command line."""

from mike_sdk.cli.main import main, parser

__all__ = ["main", "parser"]
