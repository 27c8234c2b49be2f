"""Built-in backends. Importing this package registers them (heavy imports stay lazy).

``openai`` and ``anthropic`` register here but import their SDKs on first call only;
``mock`` is a deterministic stand-in model for tests and strategy development.
"""

from . import anthropic, hf, mock, openai  # noqa: F401  (registers "anthropic", "hf", "mock", "openai")
