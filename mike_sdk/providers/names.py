"""The family part of a provider's model name, shared by profiles and prices."""

from __future__ import annotations

__all__ = ["fine_tuned_base", "model_family_name"]


def model_family_name(model: str) -> str:
    """The part of a model name that profiles and prices match, lower-cased: without a
    router prefix (``openai/``), a cloud prefix (Bedrock's ``us.anthropic.``), a version
    suffix (Vertex's ``@20250929``, Bedrock's ``-v1:0``) or this SDK's ``@host``.

    >>> model_family_name("us.anthropic.claude-opus-4-7-v1:0")
    'claude-opus-4-7'
    >>> model_family_name("openai/gpt-5-mini")
    'gpt-5-mini'
    >>> model_family_name("gpt-4.1-mini@127.0.0.1:8000")
    'gpt-4.1-mini'
    """
    name = model.lower().split("@", 1)[0].rsplit("/", 1)[-1]
    if "anthropic." in name:
        name = name.split("anthropic.", 1)[1]
        name = name.rsplit("-v", 1)[0] if ":" in name else name
    return name


def fine_tuned_base(name: str) -> str | None:
    """The base model of an OpenAI fine-tune name, or None for any other name.

    A fine-tune takes the requests its base model takes (but is priced apart, so prices
    do not use this).

    >>> fine_tuned_base("ft:gpt-4.1-mini-2025-04-14:acme:support:abc123")
    'gpt-4.1-mini-2025-04-14'
    """
    if not name.startswith("ft:"):
        return None
    base = name.split(":")[1]
    return base or None
