"""The row table of `mike view`: one flat record per item, as the Parquet cache stores it.

A row of ``results.jsonl`` becomes one record of plain columns (scores, likelihood and
answer language flattened), plus what the viewer filters on that the row does not hold:
the question (the last paragraph of the stored prompt: the edit and the question, the
demonstrations left out), and the target language's script and family.
"""

from __future__ import annotations

from typing import Any

from mike_sdk.data.families import LANGUAGE_INFO
from mike_sdk.runfolder.files import ResultRow

__all__ = ["TEXT_COLUMNS", "flat_record", "question_of"]

#: Columns the free-text filter searches.
TEXT_COLUMNS = ("question", "gold", "answer")


def question_of(text: str) -> str:
    """The last paragraph of a prompt or message: what distinguishes one item's request."""
    return text.rstrip("\n").rsplit("\n\n", 1)[-1]


def flat_record(row: ResultRow, seq: int, scorers: list[str]) -> dict[str, Any]:
    """One row as the cache's columns (``seq``: its place in the folder's final rows)."""
    check, language = row.likelihood, row.answer_language
    info = LANGUAGE_INFO.get(row.target_lang)
    record: dict[str, Any] = {
        "seq": seq, "id": row.id, "task": row.task, "source": row.source_lang,
        "target": row.target_lang, "item": row.index,
        "case_id": None if row.case_id is None else str(row.case_id), "metric": row.metric,
        "gold": row.gold, "answer": row.answer, "output": row.output,
        "label": language.label if language else None,
        "detected": language.detected if language else None,
        "likelihood_new": check.new_logprob if check else None,
        "likelihood_old": check.old_logprob if check else None,
        "likelihood_won": check.new_more_probable if check else None,
        "cached": row.cached, "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens, "reasoning_tokens": row.reasoning_tokens,
        "cost_usd": row.cost_usd, "finish_reason": row.finish_reason, "error": row.error,
        "cache_key": row.cache_key,
        "script": info.script if info else None, "family": info.family if info else None,
    }
    record.update({f"score_{name}": row.scores.get(name) for name in scorers})
    return record
