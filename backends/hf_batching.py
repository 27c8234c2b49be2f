"""Helpers of the Hugging Face backend: a model folder's fingerprint, the scoring
tokenizer (a folder's ``tokenizer.json``, no ``transformers``), whether CUDA can be there
(no ``torch``), left-padded batches, greedy generation of one batch with per-row stopping
at stop strings, continuation scoring, and the batch size (fixed, or chosen from free
memory with a back-off where memory runs out)."""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.errors import BackendError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("mike_sdk.backends.hf")

# tokenizer_config.json keys that make ``transformers`` change the tokenizer.json it loads
# (or load another one): such folders get ``AutoTokenizer`` for scoring too.
_REBUILDS = ("add_prefix_space", "from_slow", "legacy", "tokenizer_file", "auto_map",
             "added_tokens_decoder", "additional_special_tokens", "extra_special_tokens",
             "do_lower_case")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".index.json")
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def cuda_possible() -> bool:
    """Whether ``torch.cuda`` could find a GPU here; False where it certainly cannot (Linux
    without NVIDIA, ROCm or WSL device files, or macOS), so that no torch import is needed."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return any(os.path.exists(path) for path in _GPU_DEVICE_FILES)
    return True


def folder_fingerprint(folder: Path, gguf_file: str | None = None) -> str:
    """A cheap content fingerprint of a local model folder.

    Hashes ``config.json`` and the names and sizes of weight and tokenizer files (reading
    gigabytes of weights would defeat a cached run); the folder's location is not part of it.
    """
    digest = hashlib.sha256()
    if (folder / "config.json").is_file():
        digest.update((folder / "config.json").read_bytes())
    for path in sorted(folder.iterdir()):
        name = path.name
        relevant = name.endswith(_WEIGHT_SUFFIXES) or name.startswith("tokenizer")
        if gguf_file is not None and name.endswith(".gguf"):
            relevant = name == gguf_file
        if relevant and path.is_file():
            digest.update(f"\0{name}\0{path.stat().st_size}".encode())
    return f"fp:{digest.hexdigest()[:32]}"


def tokenizer_file(folder: Path) -> Path | None:
    """``folder``'s ``tokenizer.json`` where ``AutoTokenizer`` would encode exactly as it
    does alone: None without one, or when ``tokenizer_config.json`` asks ``transformers``
    to change it (or is unreadable)."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or any(key in config for key in _REBUILDS):
        return None
    return path


class HFTokenizer:
    """The SDK view of a Hugging Face tokenizer: ``encode`` without special tokens.

    Scoring (the paper's F1) needs token ids only, so a model folder's ``tokenizer.json``
    is enough: the Rust ``tokenizers`` library loads it in about a second, where
    ``AutoTokenizer`` takes several (and imports ``transformers`` and ``torch``). The
    ``transformers`` tokenizer is then loaded only when :attr:`hf` is first read (the model
    needs it to generate).
    """

    def __init__(self, tokenizer: Any = None, *, fast: Any = None,
                 load: Callable[[], Any] | None = None, file: str | None = None) -> None:
        if tokenizer is None and load is None and fast is None:
            raise ValueError("HFTokenizer needs a tokenizer or a way to load one.")
        self._hf = tokenizer
        self._load = load
        if fast is None and tokenizer is not None and getattr(tokenizer, "is_fast", False):
            fast = tokenizer.backend_tokenizer
        self.fast: Any = fast
        """The Rust ``tokenizers.Tokenizer`` that encodes (None: encode through :attr:`hf`)."""
        self.file = file
        """The ``tokenizer.json`` that :attr:`fast` was read from, if it was."""

    def __reduce__(self) -> tuple[Any, ...]:
        # For a helper process, which encodes only: never the model's loader.
        if self.file is not None:
            return _from_file, (self.file,)
        if self.fast is not None:
            return _from_file, (None, self.fast)
        return HFTokenizer, (self.hf,)

    @property
    def hf(self) -> Any:
        """The ``transformers`` tokenizer (loaded on first use when built from a file)."""
        if self._hf is None:
            if self._load is None:
                raise RuntimeError("This tokenizer was sent to another process to encode: "
                                   "it has no transformers tokenizer.")
            self._hf = self._load()
        return self._hf

    @property
    def hf_loaded(self) -> bool:
        """Whether :attr:`hf` is loaded (reading it would load it)."""
        return self._hf is not None

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        if self.fast is not None:
            ids: list[int] = self.fast.encode(text, add_special_tokens=False).ids
            return ids
        return list(self.hf.encode(text, add_special_tokens=False))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """:meth:`encode` for many texts in one call (the Rust tokenizer runs them together)."""
        if not texts:
            return []
        if self.fast is not None:
            encodings = self.fast.encode_batch(texts, add_special_tokens=False)
            return [encoding.ids for encoding in encodings]
        return [self.encode(text) for text in texts]


def _from_file(path: str | None, fast: Any = None) -> HFTokenizer:
    from tokenizers import Tokenizer

    return HFTokenizer(fast=fast or Tokenizer.from_file(str(path)), file=path)


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


def cache_argument(model: Any) -> str:
    """The name under which ``model`` takes a key/value cache (``cache`` since transformers
    5, ``past_key_values`` before)."""
    return "cache" if "cache" in forward_parameters(model) else "past_key_values"


def generate_rows(model: Any, tokenizer: Any, input_ids: torch.Tensor,
                  attention_mask: torch.Tensor, requests: list[GenerationRequest],
                  input_tokens: list[int], cache: Any = None,
                  static: bool = False) -> list[Generation]:
    """Greedy generations of one batch: row ``i`` continues ``input_ids[i]`` (padding masked
    out by ``attention_mask``) for ``requests[i]``, stopping at its stop strings, its token
    budget or EOS. ``cache`` holds the keys and values of the first columns where they are
    already computed (a shared prefix); ``input_tokens`` are the rows' prompt lengths.
    ``static`` asks for a static key/value cache, which ``transformers`` compiles on CUDA."""
    import torch
    from transformers import StoppingCriteriaList

    prompt_len = input_ids.shape[1]
    criterion = StopOnStrings(tokenizer, prompt_len, requests)
    extra: dict[str, Any] = {} if cache is None else {cache_argument(model): cache}
    if static and cache is None:
        extra["cache_implementation"] = "static"
    output = model.generate(
        input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
        do_sample=False, max_new_tokens=max(r.max_new_tokens for r in requests),
        stopping_criteria=StoppingCriteriaList([criterion]),
        pad_token_id=tokenizer.pad_token_id, return_dict_in_generate=True,
        output_scores=any(r.logprobs for r in requests), **extra)
    sequences = output.sequences[:, prompt_len:].cpu()
    stop_ids = eos_ids(model, tokenizer)
    generations = []
    for row, request in enumerate(requests):
        ids = sequences[row].tolist()
        length = criterion.done_at[row] or min(len(ids), request.max_new_tokens)
        reason: Literal["stop", "eos", "length"] = (
            "stop" if criterion.stopped[row] else "length")
        eos_at = next((pos for pos, t in enumerate(ids[:length]) if t in stop_ids), None)
        if eos_at is not None:
            length, reason = eos_at + 1, "eos"
        ids = ids[:length]
        logprobs = None
        if request.logprobs and output.scores:
            logprobs = tuple(float(torch.log_softmax(output.scores[s][row].float(), -1)[t])
                             for s, t in enumerate(ids))
        generations.append(Generation(
            text=tokenizer.decode(ids, skip_special_tokens=True),
            input_tokens=input_tokens[row], output_tokens=length,
            finish_reason=reason, logprobs=logprobs))
    return generations


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


# ------------------------------------------------------------- batch size from free memory

AUTO_CAP = 512
"""The largest batch ``batch_size="auto"`` chooses on a GPU: an 8B model's decode step
costs about the same at 512 rows as at 64, and larger batches mostly add padding."""
AUTO_CPU_CAP = 16
"""The largest batch chosen on a CPU, where a batch's time grows with its rows."""
MEMORY_SHARE = 0.8
"""Of the free memory, the part the batch may fill (the allocator fragments the rest)."""


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Key/value cache bytes one token takes in every layer: layers x key/value heads x
    head size x 2 (keys and values) x the dtype's bytes."""
    heads = int(getattr(config, "num_attention_heads", 1))
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // heads
    return int(config.num_hidden_layers) * kv_heads * int(head_dim) * 2 * dtype_bytes


def row_bytes(config: Any, dtype_bytes: int, prompt_tokens: int, new_tokens: int) -> int:
    """Memory one batch row needs beyond the weights: its key/value cache over prompt and
    new tokens, the activations of its prompt's forward pass (hidden and MLP widths, a few
    live at once), and float32 next-token scores over the vocabulary (logits and their
    log-softmax)."""
    tokens = prompt_tokens + new_tokens
    width = int(config.hidden_size) * 4 + int(getattr(config, "intermediate_size", 0)) * 2
    activations = prompt_tokens * width * dtype_bytes
    scores = (new_tokens + 2) * int(config.vocab_size) * 4 * 2
    return kv_bytes_per_token(config, dtype_bytes) * tokens + activations + scores


def auto_batch_size(config: Any, dtype_bytes: int, free_bytes: int, prompt_tokens: int,
                    new_tokens: int, cap: int = AUTO_CAP) -> int:
    """The largest power of two up to ``cap`` whose rows fit in :data:`MEMORY_SHARE` of
    ``free_bytes`` (at least 1: where even one row does not fit, running out of memory
    says so)."""
    fits = int(free_bytes * MEMORY_SHARE) // max(1, row_bytes(config, dtype_bytes,
                                                              prompt_tokens, new_tokens))
    size = 1
    while size * 2 <= min(fits, cap):
        size *= 2
    return size


def free_memory(device: Any) -> int | None:
    """Bytes free for a batch on ``device``: CUDA's free memory, or on a CPU the memory
    available to new processes (Linux's ``/proc/meminfo``); None where unknown (then
    ``"auto"`` takes its largest size)."""
    import torch

    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class BatchSizer:
    """The batch size of the backend's calls: a fixed one, or ``"auto"``: chosen per call
    from free memory (as lm-eval's ``auto``) and halved where the device runs out of memory,
    that call going on with what is left and later calls staying at or below it."""

    def __init__(self, size: int | Literal["auto"]) -> None:
        self.size = size
        self.ceiling = AUTO_CAP
        """The largest automatic size still allowed (lowered by running out of memory)."""

    def largest(self, cuda: bool) -> int:
        """The most rows one batch may take (what the backend tells its callers)."""
        if self.size != "auto":
            return self.size
        return min(self.ceiling, AUTO_CAP if cuda else AUTO_CPU_CAP)

    def choose(self, model: Any, prompt_tokens: int, new_tokens: int) -> int:
        """The size for a call whose longest prompt and answer have these token counts."""
        if self.size != "auto":
            return self.size
        cuda = model.device.type == "cuda"
        free = free_memory(model.device)
        if free is None:
            return self.largest(cuda)
        config = model.config
        if hasattr(config, "get_text_config"):
            config = config.get_text_config(decoder=True)
        return auto_batch_size(config, model.dtype.itemsize, free, prompt_tokens, new_tokens,
                               cap=self.largest(cuda))

    def run(self, model: Any, run: Callable[[int], None], prompt_tokens: int,
            new_tokens: int) -> None:
        """``run(size)``; where it runs out of memory under ``"auto"``, ``run`` again at half
        the size (``run`` itself skips what the earlier tries answered)."""
        import torch

        size = self.choose(model, prompt_tokens, new_tokens)
        while True:
            try:
                return run(size)
            except torch.OutOfMemoryError:
                if self.size != "auto":
                    raise BackendError(f"Out of memory at batch size {size}: give a smaller "
                                       "--batch-size, or --batch-size auto.") from None
                if size == 1:
                    raise BackendError("Out of memory at batch size 1: the model and one "
                                       "prompt do not fit; use a smaller dtype or model.") \
                        from None
            size //= 2
            self.ceiling = min(self.ceiling, size)
            logger.warning("Out of memory at batch size %d: going on at %d.", size * 2, size)
            gc.collect()
            if model.device.type == "cuda":
                torch.cuda.empty_cache()
