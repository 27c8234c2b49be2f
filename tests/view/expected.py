"""The viewer's row table as the run-folder readers give it: what DuckDB's own reading
of a run folder (:mod:`mike_sdk.view.ingest`) must equal, row for row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mike_sdk.data.families import LANGUAGE_INFO
from mike_sdk.runfolder.files import ResultRow
from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import final_rows


def question_of(text: str) -> str:
    """The last paragraph of a prompt or message: what distinguishes one item's request."""
    return text.rstrip("\n").rsplit("\n\n", 1)[-1]


def flat_record(row: ResultRow, seq: int, scorers: list[str], question: str | None
                ) -> dict[str, Any]:
    """One row as the table's columns (``seq``: its place among the folder's final rows)."""
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
    record["question"] = question
    record["haystack"] = "\x1f".join(
        (v or "") for v in (question, row.gold, row.answer)).lower()
    return record


def expected_rows(folder: Path, scorers: list[str]) -> list[dict[str, Any]]:
    """The folder's final rows through the pydantic readers, as the table's records."""
    requests = read_requests(folder)
    rows = []
    for seq, row in enumerate(final_rows(folder)):
        request = requests.get(row.cache_key)
        sent = row if row.prompt is not None or row.messages is not None else request
        text = None
        if sent is not None:
            text = sent.prompt if sent.prompt is not None else (
                sent.messages[-1].content if sent.messages else "")
        rows.append(flat_record(row, seq, scorers, None if text is None
                                else question_of(text)))
    return rows
