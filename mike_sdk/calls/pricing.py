"""What a call costs: a price table (shipped defaults plus a user file) applied to usage.

Prices are USD per million tokens. The user file (``--prices FILE`` or
``$MIKE_PRICES``), JSON or TOML, maps model names to prices and overrides the
defaults model by model::

    {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6}}

A model is looked up by its exact name, then by the longest known prefix
(``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``). An unknown model has no
cost (``None``), never an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mike_sdk.backend import Generation
from mike_sdk.errors import ConfigError

PRICES_ENV = "MIKE_PRICES"
DEFAULTS_AS_OF = "2025-08"
DEFAULTS_NOTE = (f"defaults as of {DEFAULTS_AS_OF}, check your provider's price page and "
                 f"override with --prices FILE or ${PRICES_ENV}")


class Price(BaseModel):
    """USD per million tokens for one model."""

    model_config = ConfigDict(frozen=True)

    input: float = Field(ge=0)
    """Uncached prompt tokens."""
    cached_input: float | None = Field(default=None, ge=0)
    """Prompt tokens served from the provider's prompt cache (default: the input price)."""
    output: float = Field(ge=0)
    """Generated tokens."""


# Defaults as of 2025-08 (list prices, standard tier, USD per million tokens). Check your
# provider: prices change, and batch or priority tiers differ.
DEFAULT_PRICES: dict[str, Price] = {
    name: Price(input=i, cached_input=c, output=o) for name, (i, c, o) in {
        "gpt-5": (1.25, 0.125, 10.0),
        "gpt-5-mini": (0.25, 0.025, 2.0),
        "gpt-5-nano": (0.05, 0.005, 0.4),
        "gpt-4.1": (2.0, 0.5, 8.0),
        "gpt-4.1-mini": (0.4, 0.1, 1.6),
        "gpt-4.1-nano": (0.1, 0.025, 0.4),
        "gpt-4o": (2.5, 1.25, 10.0),
        "gpt-4o-mini": (0.15, 0.075, 0.6),
        "claude-opus-4-1": (15.0, 1.5, 75.0),
        "claude-opus-4": (15.0, 1.5, 75.0),
        "claude-sonnet-4": (3.0, 0.3, 15.0),
        "claude-3-7-sonnet": (3.0, 0.3, 15.0),
        "claude-3-5-haiku": (0.8, 0.08, 4.0),
    }.items()
}


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ConfigError(f"Price file {path}: TOML needs Python 3.11+; use JSON.") from None
        return tomllib.loads(text)
    return json.loads(text)


class PriceTable:
    """Prices by model name; :meth:`cost` of a generation or ``None`` when unknown."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices: dict[str, Price] = dict(DEFAULT_PRICES if prices is None else prices)
        self._found: dict[str, Price | None] = {}
        """Prefix matches already made, by model name (the table does not change once used)."""

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """The defaults overridden by ``path`` (or ``$MIKE_PRICES`` when ``path`` is None)."""
        table = cls()
        source = path if path is not None else os.environ.get(PRICES_ENV) or None
        if source is None:
            return table
        file = Path(source).expanduser()
        try:
            raw = _read(file)
            if not isinstance(raw, dict):
                raise ValueError("expected an object of model names")
            table.prices.update({str(k): Price.model_validate(v) for k, v in raw.items()})
        except FileNotFoundError:
            raise ConfigError(f"Price file {file} not found (from --prices or "
                              f"${PRICES_ENV}).") from None
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"Price file {file} is invalid: {first}. Expected "
                              '{"model": {"input": USD, "cached_input": USD, "output": USD}} '
                              "per million tokens.") from None
        return table

    def price(self, model: str) -> Price | None:
        """The price of ``model``: exact name, else the longest matching prefix, else None."""
        if model in self.prices:
            return self.prices[model]
        if model not in self._found:  # every row asks again: match each name once
            name = model.rsplit("/", 1)[-1]
            matches = [k for k in self.prices if name.startswith(k)]
            self._found[model] = self.prices[max(matches, key=len)] if matches else None
        return self._found[model]

    def cost(self, model: str, input_tokens: int | None, output_tokens: int | None,
             cached_input_tokens: int | None = None) -> float | None:
        """USD for this usage, or ``None`` when the model or the usage is unknown."""
        price = self.price(model)
        if price is None or input_tokens is None or output_tokens is None:
            return None
        cached = min(cached_input_tokens or 0, input_tokens)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        return ((input_tokens - cached) * price.input + cached * cached_rate
                + output_tokens * price.output) / 1e6

    def generation_cost(self, model: str, generation: Generation) -> float | None:
        """USD of one :class:`Generation`, from the usage it reports."""
        return self.cost(model, generation.input_tokens, generation.output_tokens,
                         generation.cached_input_tokens)
