"""The configuration of one evaluation run."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .data import task_name
from .languages import TARGET_LANGUAGES, normalize_language, parse_languages
from .records import METRICS, TASKS, MetricName, TaskName


class EvalConfig(BaseModel):
    """What to evaluate: tasks x target languages x items x metrics under one strategy."""

    model_config = ConfigDict(frozen=True)

    tasks: tuple[TaskName, ...] = TASKS
    """Tasks to run, in this order."""
    languages: tuple[str, ...] = TARGET_LANGUAGES
    """Target (question) languages, in this order; the paper uses the 52 non-English ones."""
    source_language: str = "en"
    """Language the edit is stated in (the paper: English)."""
    strategy: str = "8-shot-metric-specific"
    """Registered prompt-strategy name."""
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the strategy's constructor."""
    metrics: tuple[MetricName, ...] = METRICS
    """Questions to ask per item."""
    limit: int | None = Field(default=None, ge=1)
    """Only the first ``limit`` items of each test file (the same positions in every language)."""
    likelihood: bool = True
    """Run the new-vs-old likelihood check where the task and backend allow it."""

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(dict.fromkeys(task_name(t) for t in items if t.strip()))

    @field_validator("languages", mode="before")
    @classmethod
    def _languages(cls, value: Any) -> tuple[str, ...]:
        return parse_languages(value)

    @field_validator("source_language")
    @classmethod
    def _source(cls, value: str) -> str:
        return normalize_language(value)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> tuple[str, ...]:
        from .errors import unknown_name

        items = value.split(",") if isinstance(value, str) else list(value)
        for metric in items:
            if metric not in METRICS:
                raise unknown_name("metric", metric, METRICS)
        return tuple(dict.fromkeys(items))

    def fingerprint(self) -> str:
        """A short stable hash of the configuration (names default run folders)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]
