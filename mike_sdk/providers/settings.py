"""How a hosted model's requests are built, decided once from its profile and options.

The settings are a value: the backend builds every request body from them, the run
records them in ``manifest.json`` and ``summary.json`` (so that two runs can be told
apart), and :meth:`RequestSettings.tag` makes them part of the cache key (an answer
sampled at the provider's default is never served for a greedy request).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mike_sdk.errors import ConfigError

from .profiles import ModelProfile

__all__ = ["DEFAULT_REASONING_BUDGET", "RequestSettings", "settings_for"]

#: Tokens allowed for hidden reasoning on top of the answer's budget. An answer of 15
#: tokens behind a budget of 15 would be empty whenever the model reasons first.
DEFAULT_REASONING_BUDGET = 1024
#: Anthropic's smallest thinking budget.
ANTHROPIC_MIN_THINKING = 1024


class RequestSettings(BaseModel):
    """What every request of a run asks of a hosted model."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    profile: str
    """The model profile entry the requests were built from."""
    api_version: str | None = None
    """API version sent (Anthropic's ``anthropic-version``); None: the SDK's default."""
    sampling: Literal["greedy", "provider-default"]
    """``greedy``: temperature 0 was sent; ``provider-default``: the model refuses
    temperature, so it was sampled at the provider's default (answers may vary)."""
    prefill: bool
    """The reply was started with the answer's opening quote (an assistant turn)."""
    stop: bool
    """Stop sequences were sent."""
    token_limit: str
    """The request field that bounds generated tokens."""
    reasoning_effort: str | None = None
    """Reasoning effort asked for; None: the model does not reason (or thinking is off)."""
    reasoning_budget: int | None = Field(default=None, ge=1)
    """Tokens allowed for reasoning on top of the answer's budget; None: no reasoning."""

    def tag(self) -> str:
        """The settings that change answers, in one line (part of the cache identity).

        >>> RequestSettings(profile="p", sampling="greedy", prefill=True, stop=True,
        ...                 token_limit="max_tokens").tag()
        'greedy,prefill,stop'
        """
        parts: list[str] = [self.sampling]
        if self.prefill:
            parts.append("prefill")
        if self.stop:
            parts.append("stop")
        if self.reasoning_effort is not None:
            parts.append(f"effort={self.reasoning_effort}")
        if self.reasoning_budget is not None:
            parts.append(f"reasoning_budget={self.reasoning_budget}")
        return ",".join(parts)


def settings_for(profile: ModelProfile, *, reasoning_effort: str | None,
                 reasoning_budget: int, option_hint: str) -> RequestSettings:
    """The settings for ``profile`` with the user's reasoning options, checked.

    ``reasoning_effort=None`` means the lowest effort the profile accepts for a model that
    reasons by default (OpenAI's reasoning models), and no thinking for one that reasons
    only when asked (Claude 4).
    """
    effort = reasoning_effort
    if effort is not None and effort not in profile.efforts:
        accepted = ", ".join(profile.efforts) or "none: the model has no reasoning control"
        raise ConfigError(f"reasoning_effort={effort!r} is not accepted by profile "
                          f"{profile.name!r}; valid: {accepted}. {option_hint}")
    if effort is None and profile.thinks_by_default and profile.efforts:
        effort = profile.efforts[0]
    thinking = effort is not None and profile.reasoning != "none"
    budget = None
    if thinking:
        budget = reasoning_budget
        if profile.reasoning == "anthropic-budget":
            budget = max(reasoning_budget, ANTHROPIC_MIN_THINKING)
    # Anthropic: thinking cannot be combined with a temperature or a prefilled reply.
    claude_thinking = thinking and profile.reasoning.startswith("anthropic")
    return RequestSettings(
        profile=profile.name, api_version=profile.api_version,
        sampling="greedy" if profile.sampling and not claude_thinking else "provider-default",
        prefill=profile.prefill and not claude_thinking, stop=profile.stop,
        token_limit=profile.token_limit, reasoning_effort=effort if thinking else None,
        reasoning_budget=budget)
