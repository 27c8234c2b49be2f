"""A chunk's result rows: answers scored, checked and labelled, one row per work item."""

from __future__ import annotations

from mike_sdk.backend import Likelihood, Tokenizer
from mike_sdk.calls.intake import Answered
from mike_sdk.memory.evaluation import MemoryStrategy
from mike_sdk.run.plan import WorkItem
from mike_sdk.runfolder.files import ResultRow
from mike_sdk.scoring.confusion import LanguageIdentifier
from mike_sdk.scoring.scorers import score_answers
from mike_sdk.strategy import PromptStrategy

__all__ = ["answer_texts", "result_rows"]


def answer_texts(todo: list[WorkItem], keys: list[str], answers: dict[str, Answered],
                 strategy: PromptStrategy) -> tuple[list[str], list[str]]:
    """Each item's output and the answer extracted from it (both empty when refused)."""
    outputs = [g.text if (g := answers[k].generation) is not None else "" for k in keys]
    extracted = [strategy.extract(w.request, text) if answers[k].generation else ""
                 for w, k, text in zip(todo, keys, outputs, strict=True)]
    return outputs, extracted


def result_rows(todo: list[WorkItem], keys: list[str], outputs: list[str],
                extracted: list[str], answers: dict[str, Answered],
                pair_keys: dict[str, tuple[str, str]], checks: dict[str, Likelihood],
                tokenizer: Tokenizer | None, identifier: LanguageIdentifier,
                memory: MemoryStrategy | None = None) -> list[ResultRow]:
    """Score and label answered work items (those whose likelihood check is missing
    because the run stopped are left for a re-run)."""
    scores = score_answers(extracted, [w.gold for w in todo], tokenizer)
    rows = []
    for work, key, text, answer, score in zip(todo, keys, outputs, extracted, scores,
                                              strict=True):
        outcome = answers[key]
        gen = outcome.generation
        check: dict[str, float] | None = None
        pair = pair_keys.get(work.id)
        if pair is not None:
            if not all(k in checks for k in pair):
                continue  # stopped before its likelihood check: left for a re-run
            # As data: the row's validation below builds the model.
            check = {"new_logprob": checks[pair[0]].mean, "old_logprob": checks[pair[1]].mean}
        item = work.item
        # Validating is cheaper than model_construct here (pydantic-core does it), and
        # a full configuration writes half a million rows.
        rows.append(ResultRow.model_validate({
            "id": work.id, "task": item.task, "index": item.index,
            "case_id": item.target.case_id, "source_lang": item.source_lang,
            "target_lang": item.target_lang, "metric": work.metric,
            "prompt": work.request.prompt, "messages": work.request.messages,
            "cache_key": key, "output": text, "answer": answer, "gold": work.gold,
            "scores": {name: 0.0 for name in score} if outcome.error else score,
            "likelihood": check, "cached": outcome.cached,
            "input_tokens": gen.input_tokens if gen else None,
            "output_tokens": gen.output_tokens if gen else None,
            "cached_input_tokens": gen.cached_input_tokens if gen else None,
            "reasoning_tokens": gen.reasoning_tokens if gen else None,
            "cost_usd": outcome.cost_usd,
            "finish_reason": gen.finish_reason if gen else "error", "error": outcome.error,
            "answer_language": identifier.label(
                answer, item.target_lang, item.source_lang, work.gold,
                item.source.answer(work.metric)),
            "retrieval": memory and memory.record(
                item.task, item.source_lang, item.target_lang, item.index, work.metric)}))
    return rows
