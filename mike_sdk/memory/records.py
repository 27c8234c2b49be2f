"""The records of an edit memory: a stored edit, an edit retrieved for a question, and
what an ``--edit-memory`` run records of its retrievals."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mike_sdk.records import Edit

#: The default embedder (registered in mike_sdk.prompts.embeddings).
MINILM = "all-MiniLM-L6-v2"


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


class RetrievalRecord(BaseModel):
    """What one question retrieved, in its result row."""

    model_config = ConfigDict(frozen=True)

    edit_ids: tuple[str, ...]
    """Ids (item positions) of the edits stated in the prompt, most similar first."""
    scores: tuple[float, ...]
    """Their similarities."""
    own_rank: int | None = None
    """1-based rank of the item's own edit among the top candidates (ignoring the
    threshold), None when it is not among them."""
    own_applied: bool
    """Whether the item's own edit was stated in the prompt."""


class RetrievalStats(BaseModel):
    """Retrieval in one task and target language of a ``--edit-memory`` run."""

    model_config = ConfigDict(frozen=True)

    questions: int
    """Questions about the edit (reliability, generality, portability)."""
    top1: float
    """Share whose best candidate is the item's own edit."""
    top_k: float
    """Share with the own edit among the top ``k_reported`` candidates."""
    k_reported: int
    """The ``k`` of ``top_k``."""
    own_applied: float
    """Share whose prompt stated the own edit (above the threshold, within ``k``)."""
    locality_questions: int
    """Locality questions."""
    locality_applied: float | None
    """Share of locality questions whose prompt stated some edit (an unrelated one)."""


class MemorySettings(BaseModel):
    """How ``--edit-memory`` retrieves (part of the run's configuration)."""

    model_config = ConfigDict(frozen=True)

    embedder: str = MINILM
    """Registered embedder name."""
    k: int = Field(default=1, ge=1)
    """Most edits stated per prompt (hit rates are reported at top-1 and top-``k``, at
    least top-5)."""
    threshold: float | None = None
    """Similarity below which no edit applies (None: the embedder's)."""
