"""Short names for OpenAI-compatible providers: a base URL and the key's variable.

``OpenAIBackend(model, preset="deepseek")`` (or ``--backend-option preset=deepseek``)
talks to DeepSeek with ``$DEEPSEEK_API_KEY``; an explicit ``base_url=`` still wins.
The request fields come from the model's profile as for OpenAI's own models.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict

from mike_sdk.errors import unknown_name

__all__ = ["Preset", "get_preset", "presets"]


class Preset(BaseModel):
    """Where an OpenAI-compatible provider is and which variable holds its key."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    base_url: str
    """The provider's OpenAI-compatible API root."""
    key_env: str
    """Environment variable of the API key."""
    key_optional: bool = False
    """A local server that may run without a key (a placeholder is sent)."""
    docs: str
    """The provider's documentation of its OpenAI compatibility, with the date read."""
    note: str = ""
    """What to know before evaluating through it."""


@cache
def presets() -> dict[str, Preset]:
    """Every shipped preset by name."""
    text = resources.files("mike_sdk.providers").joinpath("presets.json").read_text(
        encoding="utf-8")
    return {name: Preset.model_validate(entry) for name, entry in json.loads(text).items()}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an error naming the valid ones otherwise.

    >>> get_preset("deepseek").key_env
    'DEEPSEEK_API_KEY'
    """
    known = presets()
    if name not in known:
        raise unknown_name("provider preset", name, known)
    return known[name]
