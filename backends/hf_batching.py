"""Tensor-level helpers of the Hugging Face backend: left-padded batches, per-row
stopping at stop strings, and continuation scoring."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from mike_sdk.backend import GenerationRequest

if TYPE_CHECKING:
    import torch


class StopOnStrings:
    """Per-row stopping criterion: a row is done once its generated text contains one of its
    stop strings or it used its own token budget (rows of one batch may differ in both).
    ``generate`` pads rows that are done; ``done_at`` remembers where each one ended."""

    def __init__(self, tokenizer: Any, prompt_len: int, requests: list[GenerationRequest]) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.requests = requests
        self.done_at: list[int | None] = [None] * len(requests)
        self.stopped = [False] * len(requests)

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        generated = input_ids.shape[1] - self.prompt_len
        for row, request in enumerate(self.requests):
            if self.done_at[row] is not None:
                continue
            if request.stop:
                # Decode the whole continuation: a stop string may span several tokens.
                text = self.tokenizer.decode(input_ids[row, self.prompt_len :],
                                             skip_special_tokens=True)
                if any(stop in text for stop in request.stop):
                    self.done_at[row], self.stopped[row] = generated, True
                    continue
            if generated >= request.max_new_tokens:
                self.done_at[row] = generated
        done = [at is not None for at in self.done_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids, mask


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def forward_parameters(model: Any) -> set[str]:
    return set(inspect.signature(model.forward).parameters)


def score_batch(model: Any, pad_id: int, items: list[tuple[list[int], int]]) -> list[float]:
    """Sum of log-probs of the last ``n`` tokens of each row, in one forward pass.

    Left padding aligns the rows' ends, so only the last ``max(n) + 1`` positions need
    logits: over Gemma's 262k vocabulary the full logits would dominate time and memory.
    """
    import torch

    ids, mask = left_pad([row for row, _ in items], pad_id)
    ids, mask = ids.to(model.device), mask.to(model.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # so that left padding shifts nothing
    keep = max(n for _, n in items) + 1
    extra = {"logits_to_keep": keep} if "logits_to_keep" in forward_parameters(model) else {}
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, **extra).logits
    logprobs = torch.log_softmax(logits[:, -keep:-1, :].float(), dim=-1)
    picked = logprobs.gather(-1, ids[:, -(keep - 1) :].unsqueeze(-1)).squeeze(-1)
    return [float(picked[row, keep - 1 - n :].sum()) for row, (_, n) in enumerate(items)]
