"""Shared-prefix reuse for the ``hf`` backend: encode a prompt prefix that many requests
share (the demonstrations of a few-shot prompt) once, and continue every request from its
key/value cache.

The backend receives plain prompts, so prefixes are found here: a prompt's candidate
prefixes end at a blank line (``\\n\\n``, where the paper's demonstrations end), and a
request uses the longest candidate that is already encoded, shared by another request of
the same call, or seen in a recent call, else its longest one. New prefixes are encoded
together (one forward pass per micro-batch of them) and kept in a small LRU. A prefix is
tokenized alone; where its tokens are not the first tokens of the whole prompt (the
tokenizer merges across the boundary), the request takes the plain path. So do
micro-batches whose width would reach the model's sliding window (there, distances
counted over the padding would change what a token attends to), and every request where
the model's cache is not a plain per-layer key/value store.

A micro-batch may mix prefixes. Row ``i`` is laid out as ``[pad][prefix_i][pad][suffix_i]``:
the first columns (the widest prefix) come from the cache, left-padded per row; the suffix
columns are computed, left-padded too. Padding is masked and position ids count real
tokens only, so every row sees exactly its own prompt, as on the plain path.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mike_sdk.backend import Generation, GenerationRequest

from .hf_batching import cache_argument, forward_parameters, generate_rows, left_pad

if TYPE_CHECKING:
    import torch

__all__ = ["BOUNDARY", "PrefixReuse", "PrefixStats", "boundaries"]

logger = logging.getLogger("mike_sdk.backends.hf")

BOUNDARY = "\n\n"
"""Where candidate prefixes end: after a blank line (each MIKE demonstration ends so)."""
MIN_PREFIX_TOKENS = 8
"""Shorter shared prefixes are not worth a cache of their own."""
CAPACITY = 16
"""Prefix encodings kept (least recently used dropped first): a run goes language by
language, with at most three demonstration blocks per language and task."""
SEEN_CAPACITY = 4096
"""Candidate prefix texts remembered from earlier calls (texts only, no tensors), so that
a shorter prefix shared with an earlier prompt is preferred to a longer unshared one."""

Layers = list[tuple["torch.Tensor", "torch.Tensor"]]
Tokenize = Callable[[str, bool], list[int]]


@dataclass
class PrefixStats:
    """What the backend ran since it was built (for benchmarks and tests)."""

    prompt_tokens: int = 0
    """Prompt tokens run through the model: whole prompts on the plain path; with reuse,
    each prefix once per encoding plus every request's suffix."""
    prefix_encodes: int = 0
    """Prefixes encoded (those new in a call share forward passes; each is then kept)."""
    prefix_hits: int = 0
    """Requests continued from a prefix encoded in an earlier call."""
    reused_rows: int = 0
    """Requests continued from a shared prefix's cache (hits included)."""
    fallback_rows: int = 0
    """Requests with a shared prefix that took the plain path: the prefix's tokens are not
    the prompt's first tokens, or the micro-batch would reach the sliding window."""


@dataclass(eq=False)
class Prefix:
    """One shared prefix: its text (with whether special tokens were added), token ids and,
    once encoded, every layer's keys and values (batch of one)."""

    key: tuple[bool, str]
    ids: list[int]
    layers: Layers | None = field(default=None, repr=False)


def boundaries(text: str) -> list[int]:
    """Ends of ``text``'s candidate prefixes, shortest first: after each ``\\n\\n``, never
    the whole text (a request needs a suffix of its own)."""
    ends: list[int] = []
    at = text.find(BOUNDARY)
    while at != -1:
        end = at + len(BOUNDARY)
        if end < len(text):
            ends.append(end)
        at = text.find(BOUNDARY, end)
    return ends


class PrefixReuse:
    """Finds shared prefixes among prompts and keeps their encodings (a small LRU)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.stats = PrefixStats()
        self.supported = True
        """False once the model's cache turned out not to be a plain dynamic cache."""
        self._entries: OrderedDict[tuple[bool, str], Prefix] = OrderedDict()
        self._seen: OrderedDict[tuple[bool, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Drop every kept encoding (the model they came from is gone)."""
        with self._lock:
            self._entries.clear()
            self.supported = True

    def plan(self, texts: list[tuple[str, bool]], encoded: list[list[int]],
             tokenize: Tokenize) -> dict[int, Prefix]:
        """The prefix each request continues from (by index in ``texts``).

        ``texts`` are the prompts as tokenized (with whether special tokens were added),
        ``encoded`` their token ids, ``tokenize`` encodes a prefix the same way. A request
        takes its longest candidate that is kept, shared in this call or seen before, else
        its longest one: encoded with the others, it costs no more tokens than the plain
        path, and the next request of its group finds it kept.
        """
        if not self.supported:
            return {}
        candidates = [[(special, text[:end]) for end in boundaries(text)]
                      for text, special in texts]
        shared = Counter(key for keys in candidates for key in set(keys))
        chosen: dict[int, Prefix] = {}
        fresh: dict[tuple[bool, str], Prefix] = {}
        with self._lock:
            for i, keys in enumerate(candidates):
                if not keys:
                    continue
                key = next((k for k in reversed(keys) if k in self._entries
                            or shared[k] > 1 or k in self._seen), keys[-1])
                prefix = self._entries.get(key) or fresh.get(key)
                if prefix is None:
                    prefix = fresh[key] = Prefix(key, tokenize(key[1], key[0]))
                n, full = len(prefix.ids), encoded[i]
                if n < MIN_PREFIX_TOKENS or n >= len(full):
                    continue
                if full[:n] != prefix.ids:
                    self.stats.fallback_rows += 1  # the tokenizer merges across the boundary
                    continue
                chosen[i] = prefix
            for keys in candidates:
                for key in keys:
                    self._seen[key] = None
                    self._seen.move_to_end(key)
            while len(self._seen) > SEEN_CAPACITY:
                self._seen.popitem(last=False)
        return chosen

    def generate(self, model: Any, tokenizer: Any,
                 rows: dict[int, tuple[list[int], Prefix, GenerationRequest]],
                 size: int, answered: dict[int, Generation]) -> None:
        """Answer ``rows`` (index: prompt ids, prefix, request) in micro-batches of ``size``
        rows of similar suffix length, into ``answered`` batch by batch (so that a batch
        that fails loses no earlier one); the rows not answered are left to the plain path."""
        order = sorted(rows, key=lambda i: -(len(rows[i][0]) - len(rows[i][1].ids)))
        window = _sliding_window(model)
        chunks: list[list[int]] = []
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            width = (max(len(rows[i][1].ids) for i in chunk)
                     + max(len(rows[i][0]) - len(rows[i][1].ids) for i in chunk))
            if window is not None and width + max(rows[i][2].max_new_tokens
                                                  for i in chunk) > window:
                self.stats.fallback_rows += len(chunk)
            else:
                chunks.append(chunk)
        pad_id = int(tokenizer.pad_token_id)
        kept = {id(rows[i][1]) for chunk in chunks for i in chunk
                if rows[i][1].layers is not None}
        if not self._encode_all(model, pad_id, [rows[i][1] for c in chunks for i in c], size):
            return
        for chunk in chunks:
            ids = [rows[i][0] for i in chunk]
            prefixes = [rows[i][1] for i in chunk]
            prefix_width = max(len(p.ids) for p in prefixes)
            width = prefix_width + max(len(r) - len(p.ids) for r, p in zip(ids, prefixes,
                                                                           strict=True))
            self.stats.prefix_hits += sum(id(p) in kept for p in prefixes)
            self.stats.reused_rows += len(chunk)
            self.stats.prompt_tokens += sum(len(r) - len(p.ids)
                                            for r, p in zip(ids, prefixes, strict=True))
            cache = _batch_cache(model, prefixes, prefix_width)
            input_ids, mask = _layout(ids, prefixes, prefix_width, width, pad_id)
            generations = generate_rows(model, tokenizer, input_ids, mask,
                                        [rows[i][2] for i in chunk], [len(r) for r in ids],
                                        cache=cache)
            answered.update(zip(chunk, generations, strict=True))

    def _encode_all(self, model: Any, pad_id: int, prefixes: list[Prefix], size: int) -> bool:
        """Encode the prefixes not encoded yet, ``size`` at a time, and keep them all (the
        least recently used dropped first); False where the model's cache does not allow
        reuse."""
        todo = sorted({id(p): p for p in prefixes if p.layers is None}.values(),
                      key=lambda p: -len(p.ids))
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            if not self.supported or not _encode(model, pad_id, batch):
                self.supported = False
                return False
            self.stats.prefix_encodes += len(batch)
            self.stats.prompt_tokens += sum(len(p.ids) for p in batch)
        with self._lock:
            for prefix in dict.fromkeys(prefixes):
                self._entries[prefix.key] = prefix
                self._entries.move_to_end(prefix.key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return True


def _text_config(model: Any) -> Any:
    config = model.config
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


def _sliding_window(model: Any) -> int | None:
    window = getattr(_text_config(model), "sliding_window", None)
    return window if isinstance(window, int) and window > 0 else None


def _new_cache(model: Any) -> Any:
    """An empty dynamic cache laid out for ``model`` (sliding and full layers), or None
    where this ``transformers`` has no such cache or the model asks for another kind."""
    if getattr(model.generation_config, "cache_implementation", None) is not None:
        return None
    try:
        from transformers import DynamicCache

        return DynamicCache(config=_text_config(model))
    except (ImportError, TypeError, ValueError):
        return None


def _encode(model: Any, pad_id: int, prefixes: list[Prefix]) -> bool:
    """Sets every layer's keys and values over each prefix's ids (one forward pass over the
    left-padded prefixes; each row's padding cut off). False where the model's cache is not
    a plain per-layer key/value store holding every token."""

    cache = _new_cache(model)
    if cache is None:
        logger.info("Shared-prefix reuse is off: this model needs another kind of cache.")
        return False
    ids, mask = left_pad([p.ids for p in prefixes], pad_id)
    extra = {"logits_to_keep": 1} if "logits_to_keep" in forward_parameters(model) else {}
    extra[cache_argument(model)] = cache
    model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
          position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(model.device), use_cache=True,
          **extra)
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    plain = (DynamicLayer, DynamicSlidingWindowLayer)
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) not in plain or layer.keys is None
                         or layer.keys.shape[-2] != ids.shape[1] for layer in layers):
        logger.info("Shared-prefix reuse is off: this model's cache is not a plain key/value "
                    "store.")
        return False
    for row, prefix in enumerate(prefixes):
        n = len(prefix.ids)
        prefix.layers = [(layer.keys[row : row + 1, :, -n:].clone(),
                          layer.values[row : row + 1, :, -n:].clone()) for layer in layers]
    return True


def _batch_cache(model: Any, prefixes: list[Prefix], width: int) -> Any:
    """A cache holding each row's prefix, right-aligned in ``width`` columns (zeros on the
    left: masked padding)."""
    cache = _new_cache(model)
    first = prefixes[0].layers
    assert first is not None
    for index, (key0, value0) in enumerate(first):
        keys = key0.new_zeros((len(prefixes), key0.shape[1], width, key0.shape[3]))
        values = value0.new_zeros((len(prefixes), value0.shape[1], width, value0.shape[3]))
        for row, prefix in enumerate(prefixes):
            assert prefix.layers is not None
            key, value = prefix.layers[index]
            keys[row, :, width - key.shape[-2] :] = key[0]
            values[row, :, width - value.shape[-2] :] = value[0]
        cache.update(keys, values, index)
    return cache


def _layout(ids: list[list[int]], prefixes: list[Prefix], prefix_width: int, width: int,
            pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[pad][prefix][pad][suffix]`` rows of ``width`` tokens, and their attention mask."""
    import torch

    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, (full, prefix) in enumerate(zip(ids, prefixes, strict=True)):
        n = len(prefix.ids)
        input_ids[row, prefix_width - n : prefix_width] = torch.tensor(full[:n])
        mask[row, prefix_width - n : prefix_width] = 1
        suffix = full[n:]
        input_ids[row, width - len(suffix) :] = torch.tensor(suffix)
        mask[row, width - len(suffix) :] = 1
    return input_ids, mask
