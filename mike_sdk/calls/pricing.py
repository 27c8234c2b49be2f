"""What a call costs: a price table (shipped defaults plus a user file) applied to usage.

Prices are USD per million tokens. The user file (``--prices FILE`` or
``$MIKE_PRICES``), JSON or TOML, maps model names to prices and overrides the
defaults model by model::

    {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6}}

A model is looked up by its exact name, then by the longest known prefix of its family
name (``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``, Bedrock's
``us.anthropic.claude-opus-4-7-v1:0`` as ``claude-opus-4-7``). An unknown model has no
cost (``None``), never an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mike_sdk.backend import Generation
from mike_sdk.errors import ConfigError
from mike_sdk.overrides import read_override
from mike_sdk.providers.names import model_family_name

PRICES_ENV = "MIKE_PRICES"
DEFAULTS_AS_OF = "2026-11"
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
    """Generated tokens (reasoning tokens included: providers bill them as output)."""
    as_of: str | None = None
    """When the price was read from the provider's price page (``YYYY-MM``)."""
    batch: float = Field(default=0.5, gt=0, le=1)
    """What the provider's batch interface charges, as a share of every rate above (OpenAI's
    Batch API and Anthropic's Message Batches: half, cached input included)."""
    batch_as_of: str | None = None
    """When the batch share was read from the provider's price page (``YYYY-MM``)."""

    def at_batch_rates(self) -> Price:
        """This price with every rate at the batch share (what a batch request costs)."""
        return Price(input=self.input * self.batch, output=self.output * self.batch,
                     cached_input=None if self.cached_input is None
                     else self.cached_input * self.batch,
                     as_of=self.batch_as_of or self.as_of, batch=1.0,
                     batch_as_of=self.batch_as_of)


# List prices, standard tier, USD per million tokens, with the month they were read from
# the provider's price page. Check your provider: prices change, and batch or priority
# tiers differ. The OpenAI-compatible providers' models are priced where they were found.
_LISTED: dict[str, tuple[float, float | None, float, str]] = {
    "gpt-5": (1.25, 0.125, 10.0, "2026-11"),
    "gpt-5-mini": (0.25, 0.025, 2.0, "2026-11"),
    "gpt-5-nano": (0.05, 0.005, 0.4, "2026-11"),
    "gpt-4.1": (2.0, 0.5, 8.0, "2026-03"),
    "gpt-4.1-mini": (0.4, 0.1, 1.6, "2026-03"),
    "gpt-4.1-nano": (0.1, 0.025, 0.4, "2025-08"),
    "gpt-4o": (2.5, 1.25, 10.0, "2025-08"),
    "gpt-4o-mini": (0.15, 0.075, 0.6, "2025-08"),
    "o3": (2.0, 0.5, 8.0, "2026-03"),
    "o4-mini": (1.1, 0.275, 4.4, "2026-03"),
    "claude-opus-5": (5.0, 0.5, 25.0, "2026-11"),
    "claude-opus-4-8": (5.0, 0.5, 25.0, "2026-11"),
    "claude-opus-4-7": (5.0, 0.5, 25.0, "2026-11"),
    "claude-opus-4-6": (5.0, 0.5, 25.0, "2026-11"),
    "claude-opus-4-5": (5.0, 0.5, 25.0, "2026-11"),
    "claude-opus-4-1": (15.0, 1.5, 75.0, "2025-08"),
    "claude-opus-4": (15.0, 1.5, 75.0, "2025-08"),
    "claude-sonnet-4-6": (3.0, 0.3, 15.0, "2026-11"),
    "claude-sonnet-4-5": (3.0, 0.3, 15.0, "2026-11"),
    "claude-sonnet-4": (3.0, 0.3, 15.0, "2025-08"),
    "claude-haiku-4-5": (1.0, 0.1, 5.0, "2026-11"),
    "claude-3-7-sonnet": (3.0, 0.3, 15.0, "2025-08"),
    "claude-3-5-haiku": (0.8, 0.08, 4.0, "2025-08"),
    "deepseek-chat": (0.28, 0.028, 0.42, "2025-12"),
    "deepseek-reasoner": (0.28, 0.028, 0.42, "2025-12"),
}
#: Both batch interfaces charge half the standard rates (cached input too), as read from
#: platform.openai.com/docs/guides/batch and docs.anthropic.com/en/docs/build-with-claude/
#: batch-processing; DeepSeek offers no batch interface.
BATCH_SHARE, BATCH_AS_OF = 0.5, "2026-11"
DEFAULT_PRICES: dict[str, Price] = {
    name: Price(input=i, cached_input=c, output=o, as_of=when, batch=BATCH_SHARE,
                batch_as_of=BATCH_AS_OF)
    for name, (i, c, o, when) in _LISTED.items()
}


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
        where = path if path is not None else os.environ.get(PRICES_ENV)
        try:
            raw = read_override(path, PRICES_ENV, "Price file", "--prices")
            if raw is None:
                return table
            if not isinstance(raw, dict):
                raise ValueError("expected an object of model names")
            table.prices.update({str(k): Price.model_validate(v) for k, v in raw.items()})
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"Price file {where} is invalid: {first}. Expected "
                              '{"model": {"input": USD, "cached_input": USD, "output": USD}} '
                              "per million tokens.") from None
        return table

    def price(self, model: str) -> Price | None:
        """The price of ``model``: exact name, else the longest matching prefix, else None."""
        if model in self.prices:
            return self.prices[model]
        if model not in self._found:  # every row asks again: match each name once
            name = model_family_name(model)
            matches = [k for k in self.prices if name.startswith(k.lower())]
            self._found[model] = self.prices[max(matches, key=len)] if matches else None
        return self._found[model]

    def cost(self, model: str, input_tokens: float | None, output_tokens: float | None,
             cached_input_tokens: float | None = None, *, batch: bool = False) -> float | None:
        """USD for this usage, or ``None`` when the model or the usage is unknown;
        ``batch=True`` prices it at the provider's batch rates."""
        price = self.price(model)
        if price is None or input_tokens is None or output_tokens is None:
            return None
        if batch:
            price = price.at_batch_rates()
        cached = min(cached_input_tokens or 0, input_tokens)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        return ((input_tokens - cached) * price.input + cached * cached_rate
                + output_tokens * price.output) / 1e6

    def generation_cost(self, model: str, generation: Generation, *,
                        batch: bool = False) -> float | None:
        """USD of one :class:`Generation`, from the usage it reports (``batch=True``: at
        the provider's batch rates)."""
        return self.cost(model, generation.input_tokens, generation.output_tokens,
                         generation.cached_input_tokens, batch=batch)
