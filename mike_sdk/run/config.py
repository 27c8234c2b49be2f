"""The configuration of one evaluation run."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mike_sdk.data.benchmark import task_name
from mike_sdk.data.languages import TARGET_LANGUAGES, parse_languages
from mike_sdk.memory.records import MemorySettings
from mike_sdk.records import METRICS, TASKS, MetricName, TaskName


class EvalConfig(BaseModel):
    """What to evaluate: tasks x source x target languages x items x metrics, one strategy.

    ``source_language="fr"`` (the former single-source field) is still accepted and
    means ``source_languages=("fr",)``.
    """

    model_config = ConfigDict(frozen=True)

    tasks: tuple[TaskName, ...] = TASKS
    """Tasks to run, in this order."""
    languages: tuple[str, ...] = TARGET_LANGUAGES
    """Target (question) languages, in this order; the paper uses the 52 non-English ones."""
    source_languages: tuple[str, ...] = ("en",)
    """Languages the edit is stated in, in this order (the paper: English only)."""
    skip_same_language: bool = False
    """Leave out the pairs whose source equals the target (monolingual editing)."""
    strategy: str = "8-shot-metric-specific"
    """Registered prompt-strategy name."""
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the strategy's constructor."""
    metrics: tuple[MetricName, ...] = METRICS
    """Questions to ask per item."""
    limit: int | None = Field(default=None, ge=1)
    """Only the first ``limit`` items of each test file (the same positions in every language)."""
    language_id: Literal["auto", "script", "lingua"] = "auto"
    """How answers' languages are told apart: Unicode scripts plus the ``lingua``
    identifier for pairs that share a script (``lingua``: the ``analysis`` extra), scripts
    only (``script``: Latin-script answers to a Latin-script pair are ``undetermined``), or
    ``auto``: ``lingua`` when it is installed, else ``script`` (a run records which)."""
    likelihood: bool = True
    """Run the new-vs-old likelihood check where the task and backend allow it."""
    sample: int | None = Field(default=None, ge=1)
    """Items per task from a seeded permutation of positions (the same positions in every
    language and for every model; see :mod:`mike_sdk.sampling.positions`); None: every item.
    With ``target_ci``: the most items per task the rounds may take."""
    seed: int = 0
    """Seed of the sample's permutation (used with ``sample`` or ``target_ci``)."""
    target_ci: float | None = Field(default=None, gt=0)
    """Add rounds of items along the permutation until the 95% interval of each task's
    average over target languages is no wider than +/- this many points, per metric."""
    edit_memory: MemorySettings | None = None
    """Retrieve each question's edits from one memory of all the task's test edits instead
    of stating the item's own (``mike eval --edit-memory``; see docs/editing.md)."""
    shard: tuple[int, int] | None = None
    """``(i, n)``: only items whose position is ``i - 1`` modulo ``n`` (every shard has
    every language); ``mike merge`` joins the ``n`` shards' folders into one run."""

    @model_validator(mode="after")
    def _one_selection(self) -> EvalConfig:
        if self.limit is not None and (self.sample is not None or self.target_ci is not None):
            raise ValueError("give limit (the first items) or sample / target_ci (a seeded "
                             "random sample), not both")
        return self

    @property
    def sampled(self) -> bool:
        """Items come from the seeded permutation (``sample`` or ``target_ci``)."""
        return self.sample is not None or self.target_ci is not None

    @field_validator("shard", mode="before")
    @classmethod
    def _shard(cls, value: Any) -> Any:
        if isinstance(value, str):  # "2/4" on the command line
            part, sep, whole = value.partition("/")
            if not sep or not part.strip().isdigit() or not whole.strip().isdigit():
                raise ValueError(f"expected I/N such as 2/4, got {value!r}")
            value = (int(part), int(whole))
        if value is not None and not 1 <= value[0] <= value[1]:
            raise ValueError(f"shard {value[0]}/{value[1]}: I must be between 1 and N")
        return value

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(dict.fromkeys(task_name(t) for t in items if t.strip()))

    @field_validator("languages", mode="before")
    @classmethod
    def _languages(cls, value: Any) -> tuple[str, ...]:
        return parse_languages(value)

    @model_validator(mode="before")
    @classmethod
    def _single_source(cls, data: Any) -> Any:
        # Configurations written before several sources existed name one source_language.
        if isinstance(data, dict) and "source_language" in data:
            data = dict(data)
            single = data.pop("source_language")
            if "source_languages" in data and parse_languages(data["source_languages"]) \
                    != parse_languages([single]):
                raise ValueError("give source_languages or source_language, not both")
            data["source_languages"] = (single,)
        return data

    @field_validator("source_languages", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> tuple[str, ...]:
        sources = parse_languages(value)
        if not sources:
            raise ValueError("at least one source language is needed")
        return sources

    @property
    def source_language(self) -> str:
        """The first source language (for code written when there was only one)."""
        return self.source_languages[0]

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The (source, target) language pairs to evaluate, sources outermost."""
        return tuple((s, t) for s in self.source_languages for t in self.languages
                     if not (self.skip_same_language and s == t))

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> tuple[str, ...]:
        from mike_sdk.errors import unknown_name

        items = value.split(",") if isinstance(value, str) else list(value)
        for metric in items:
            if metric not in METRICS:
                raise unknown_name("metric", metric, METRICS)
        return tuple(dict.fromkeys(items))

    def fingerprint(self) -> str:
        """A short stable hash of the configuration (names default run folders)."""
        # Configurations keep the fingerprint they had before shards, samples and edit
        # memories existed.
        exclude = {name for name in ("shard", "edit_memory") if getattr(self, name) is None}
        if not self.sampled:
            exclude |= {"sample", "seed", "target_ci"}
        blob = json.dumps(self.model_dump(mode="json", exclude=exclude), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]
