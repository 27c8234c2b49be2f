"""Built-in prompt strategies. Importing this package registers them."""

from . import (
    mike,  # noqa: F401  (registers zero-shot, one-shot, 8-shot-*)
    retrieval,  # noqa: F401  (registers retrieved)
)
