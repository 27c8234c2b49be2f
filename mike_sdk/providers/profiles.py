"""What each hosted model accepts: a table of request profiles, shipped and user-extended.

The hosted APIs no longer take the same request from every model: OpenAI's reasoning
models refuse ``temperature``, ``stop`` and ``max_tokens``; Claude 4.6 and later refuse a
prefilled assistant turn; Anthropic's API version ``2026-10-21`` refuses ``temperature``
altogether. The backends build every request from the :class:`ModelProfile` that matches
the model name, never from guesses.

The shipped table is ``profiles.json`` beside this module. A user file (``profiles=``
backend option, or ``$MIKE_PROFILES``), JSON or TOML, holds more entries in the same
schema, either as a list or under ``"profiles"``; they are matched before the shipped
ones, and one that has a shipped entry's ``name`` replaces it::

    [{"name": "openai/my-finetune", "provider": "openai", "models": ["ft:gpt-5-mini*"],
      "sampling": false, "stop": false, "token_limit": "max_completion_tokens",
      "reasoning": "openai-effort", "efforts": ["minimal", "low", "medium", "high"]}]

``mike backends --models`` prints the table.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mike_sdk.errors import ConfigError, unknown_name
from mike_sdk.overrides import read_override

from .names import fine_tuned_base, model_family_name

__all__ = ["PROFILES_ENV", "ModelProfile", "ProfileTable"]

PROFILES_ENV = "MIKE_PROFILES"

Provider = Literal["openai", "anthropic"]
Reasoning = Literal["none", "openai-effort", "anthropic-budget", "anthropic-adaptive"]


class ModelProfile(BaseModel):
    """Which request fields one family of models accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str = Field(min_length=1)
    """Entry name, ``provider/family``: shown in errors, manifests and the table."""
    provider: Provider
    """The API the entry is for (OpenAI and OpenAI-compatible servers, or Anthropic)."""
    models: tuple[str, ...] = Field(min_length=1)
    """Model-name patterns (shell globs, case-insensitive) the entry applies to."""
    except_models: tuple[str, ...] = ()
    """Patterns left out although ``models`` matches them."""
    sampling: bool
    """Accepts ``temperature`` (so greedy decoding can be asked for); False: the model is
    sampled at the provider's default."""
    stop: bool
    """Accepts stop sequences."""
    prefill: bool = False
    """Accepts a final assistant turn (Anthropic's prefill)."""
    token_limit: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """The request field that bounds generated tokens."""
    reasoning: Reasoning = "none"
    """How reasoning is controlled: OpenAI's ``reasoning_effort``, Anthropic's thinking
    budget, Anthropic's adaptive thinking with an effort, or not at all."""
    efforts: tuple[str, ...] = ()
    """Accepted reasoning-effort values, lowest first."""
    thinks_by_default: bool = False
    """The model reasons unless told otherwise (OpenAI's reasoning models, Claude 5):
    requests then ask for the lowest effort and add the reasoning budget."""
    api_version: str | None = None
    """``anthropic-version`` header to send; None: the SDK's default."""
    source: str = ""
    """The documentation the entry comes from, with its date."""

    def matches(self, model: str) -> bool:
        """Whether this entry applies to ``model`` (a provider's model name)."""
        family = model_family_name(model)
        base = fine_tuned_base(family)
        # A fine-tune matches an entry for its own name (a user's ``ft:`` pattern) or,
        # failing that, for its base model's.
        return any(self._matches_name(name) for name in (family, base) if name)

    def _matches_name(self, name: str) -> bool:
        return (any(fnmatch.fnmatchcase(name, p.lower()) for p in self.models)
                and not any(fnmatch.fnmatchcase(name, p.lower())
                            for p in self.except_models))


def _entries(raw: object, origin: str) -> list[ModelProfile]:
    if isinstance(raw, dict) and "profiles" in raw:
        raw = raw["profiles"]
    if not isinstance(raw, list):
        raise ConfigError(f"Profile file {origin}: expected a list of entries (or an object "
                          'with a "profiles" list).')
    out = []
    for number, entry in enumerate(raw, 1):
        try:
            out.append(ModelProfile.model_validate(entry))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "entry"
            raise ConfigError(f"Profile file {origin}, entry {number}: {field}: "
                              f"{error['msg']}. Fields: "
                              f"{', '.join(ModelProfile.model_fields)}.") from None
    return out


class ProfileTable:
    """Profiles in match order: the user's entries, then the shipped ones."""

    def __init__(self, entries: Iterable[ModelProfile]) -> None:
        self.entries = list(entries)

    @classmethod
    def shipped(cls) -> ProfileTable:
        """The table shipped with the package."""
        text = resources.files("mike_sdk.providers").joinpath("profiles.json").read_text(
            encoding="utf-8")
        return cls(_entries(json.loads(text), "profiles.json (shipped)"))

    @classmethod
    def load(cls, path: str | Path | None = None) -> ProfileTable:
        """The shipped table extended by ``path`` (else ``$MIKE_PROFILES``, if set)."""
        table = cls.shipped()
        file = path if path is not None else os.environ.get(PROFILES_ENV)
        try:
            raw = read_override(path, PROFILES_ENV, "Profile file", "profiles=")
        except ValueError as exc:
            raise ConfigError(f"Profile file {file} is not valid JSON or TOML: "
                              f"{str(exc).splitlines()[0]}.") from None
        if raw is None:
            return table
        mine = _entries(raw, str(file))
        replaced = {p.name for p in mine}
        return cls([*mine, *(p for p in table.entries if p.name not in replaced)])

    def find(self, provider: Provider, model: str, *, name: str | None = None
             ) -> ModelProfile:
        """The first entry of ``provider`` that matches ``model`` (or the entry called
        ``name``); the shipped table ends with a catch-all per provider."""
        mine = [p for p in self.entries if p.provider == provider]
        if name is not None:
            for profile in mine:
                if profile.name == name:
                    return profile
            raise unknown_name(f"{provider} model profile", name, [p.name for p in mine])
        for profile in mine:
            if profile.matches(model):
                return profile
        raise ConfigError(f"No {provider} model profile matches {model!r}; add one in a "
                          f"profile file (profiles= or ${PROFILES_ENV}).")
