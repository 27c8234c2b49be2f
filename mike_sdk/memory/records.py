"""The records of an edit memory: a stored edit, and an edit retrieved for a question."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mike_sdk.records import Edit


class StoredEdit(BaseModel):
    """One edit kept in an :class:`~mike_sdk.memory.store.EditMemory`."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=200)
    """The edit's id: the caller's, or one made up when it was added."""
    question: str = Field(min_length=1)
    """The question the new fact answers."""
    answer: str = Field(min_length=1)
    """The new answer."""
    language: str = "en"
    """The language the edit is stated in."""

    @property
    def text(self) -> str:
        """The fact as the prompt shows it and the embedder reads it: question, space, answer."""
        return f"{self.question} {self.answer}"

    @property
    def edit(self) -> Edit:
        """The edit as the prompt strategies take it."""
        return Edit(question=self.question, answer=self.answer, language=self.language)


class Retrieved(BaseModel):
    """An edit found for a question, with its similarity."""

    model_config = ConfigDict(frozen=True)

    edit: StoredEdit
    """The edit."""
    score: float
    """Cosine similarity of the question and the edit's text under the memory's embedder."""
