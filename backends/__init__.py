"""Built-in backends. Importing this package registers them (heavy imports stay lazy)."""

from . import hf  # noqa: F401  (registers "hf")
