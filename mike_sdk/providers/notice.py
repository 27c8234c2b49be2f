"""Which profile and price a hosted model got, said once before a run starts, with the
near miss when its name matched neither (``claude-sonet-4-6``: sampled and unpriced).

A name that matches no entry still runs (fine-tunes, deployments, local servers have
names of their own): the line only says what applies and what was perhaps meant.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from mike_sdk.calls.pricing import PriceTable
from mike_sdk.providers.names import model_family_name
from mike_sdk.providers.profiles import ModelProfile, ProfileTable
from mike_sdk.providers.settings import RequestSettings

if TYPE_CHECKING:
    from mike_sdk.backend import Backend

__all__ = ["backend_notice", "known_names", "model_notice", "near_miss"]


def known_names(table: ProfileTable, prices: PriceTable) -> set[str]:
    """Model names the tables know: every priced model and the literal stem of each
    profile pattern (``claude-sonnet-4-6*`` -> ``claude-sonnet-4-6``).

    >>> "claude-sonnet-4-6" in known_names(ProfileTable.shipped(), PriceTable())
    True
    """
    names = {model_family_name(name) for name in prices.prices}
    for profile in table.entries:
        for pattern in profile.models:
            stem = pattern.split("*", 1)[0].split("[", 1)[0].split("?", 1)[0].rstrip("-.")
            if len(stem) > 2:
                names.add(stem.lower())
    return names


def near_miss(model: str, table: ProfileTable, prices: PriceTable) -> str | None:
    """The known name ``model`` was perhaps meant to be, or None.

    >>> near_miss("claude-sonet-4-6", ProfileTable.shipped(), PriceTable())
    'claude-sonnet-4-6'
    >>> near_miss("my-finetune-v3", ProfileTable.shipped(), PriceTable()) is None
    True
    """
    family = model_family_name(model)
    found = difflib.get_close_matches(family, known_names(table, prices), n=1, cutoff=0.85)
    return found[0] if found and found[0] != family else None


def _catch_all(profile: ModelProfile) -> bool:
    return "*" in profile.models


def model_notice(model: str, profile: ModelProfile, settings: RequestSettings,
                 table: ProfileTable, prices: PriceTable) -> str:
    """One line: the profile and price ``model`` gets, and the near miss when it matched
    only the catch-all profile or no price."""
    how = ("greedy" if settings.sampling == "greedy"
           else "sampled at the provider's default temperature")
    price = prices.price(model)
    doubtful = _catch_all(profile) or price is None
    if price is None:
        cost = "no price (cost not shown; add one with --prices FILE)"
    else:
        name = next(k for k, p in prices.prices.items() if p is price)
        cost = (f"priced as {name} (${price.input:g} input, ${price.output:g} output per "
                f"million tokens{f', as of {price.as_of}' if price.as_of else ''})")
        # Priced by a prefix: a date or version after it is expected, a word is not
        # (gpt-5-mni would pay gpt-5's price).
        rest = model_family_name(model)[len(name):]
        doubtful = doubtful or bool(rest and not re.match(r"[-.@:_]?\d", rest))
    line = f"model {model}: profile {profile.name} ({how}), {cost}."
    if doubtful:
        meant = near_miss(model, table, prices)
        if meant is not None:
            line += (f" Did you mean {meant!r}? (A name of your own, such as a fine-tune or "
                     "a deployment, runs as it is.)")
    return line


def backend_notice(backend: Backend, prices: PriceTable) -> str | None:
    """:func:`model_notice` for a backend built from a model profile (the hosted APIs and
    OpenAI-compatible servers); None for the others (local models, the mock)."""
    profile, settings = getattr(backend, "profile", None), backend.request_settings()
    if not isinstance(profile, ModelProfile) or settings is None:
        return None
    options = getattr(backend, "options", None)
    table = ProfileTable.load(getattr(options, "profiles", None))
    return model_notice(backend.identity.model, profile, settings, table, prices)
