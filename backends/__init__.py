"""Built-in backends. Importing this package registers them (heavy imports stay lazy).

``openai`` and ``anthropic`` register here but import their SDKs on first call only.
"""

from . import anthropic, hf, openai  # noqa: F401  (registers "anthropic", "hf", "openai")
