"""The --edit-memory flags: settings, and one clear line for misuse."""

from __future__ import annotations

import pytest

from mike_sdk.cli.main import parser
from mike_sdk.cli.memory_args import memory_settings
from mike_sdk.errors import ConfigError
from mike_sdk.memory.records import MemorySettings


def settings(*flags: str) -> MemorySettings | None:
    return memory_settings(parser().parse_args(["eval", *flags]))


def test_flags_make_settings() -> None:
    assert settings() is None
    assert settings("--edit-memory", "--memory-embedder", "use-multilingual-v3", "--memory-k",
                    "3", "--memory-threshold", "0.7") == MemorySettings(
        embedder="use-multilingual-v3", k=3, threshold=0.7)


@pytest.mark.parametrize(("flags", "message"), [
    (("--memory-k", "3"), "--memory-k only applies with --edit-memory"),
    (("--memory-k", "3", "--memory-threshold", "0.5"),
     "--memory-k, --memory-threshold only apply with --edit-memory"),
    (("--edit-memory", "--memory-k", "0"), "--memory-k must be at least 1, got 0."),
    (("--edit-memory", "--batch"), "--edit-memory does not work with --batch yet"),
])
def test_misuse(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(*flags)
