"""Edits that last: a persisted edit memory, retrieval in any language, an edited model."""

from typing import Any

from mike_sdk.memory.records import Retrieved, StoredEdit
from mike_sdk.memory.store import EditMemory, EditMemoryError

__all__ = ["EditMemory", "EditMemoryError", "EditedModel", "Retrieved", "StoredEdit"]


def __getattr__(name: str) -> Any:
    # EditedModel builds on mike_sdk.editing, which imports this package's records.
    if name == "EditedModel":
        from mike_sdk.memory.edited import EditedModel

        return EditedModel
    raise AttributeError(name)
