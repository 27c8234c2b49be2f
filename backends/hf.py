"""Local Hugging Face causal LMs (default: the embedded Gemma 3 270M base model).

Construction is cheap: the tokenizer loads on first use and the weights on the first
generate or loglikelihood call, so a fully cached run never touches the model.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mike_sdk.backend import (
    BACKENDS,
    Abilities,
    Backend,
    Generation,
    GenerationRequest,
    Identity,
    Likelihood,
    LikelihoodRequest,
)
from mike_sdk.errors import BackendError, ConfigError, invalid_options
from mike_sdk.extras import require_extra

from .embedded import EMBEDDED_MODEL_NAME, embedded_model_dir, embedded_revision
from .hf_batching import (
    BatchSizer,
    HFTokenizer,
    cuda_possible,
    folder_fingerprint,
    generate_rows,
    left_pad,
    score_batch,
    tokenizer_file,
)
from .hf_prefix import PrefixReuse, PrefixStats

if TYPE_CHECKING:
    import torch

__all__ = ["HFBackend", "HFOptions", "HFTokenizer", "PrefixStats", "folder_fingerprint"]

logger = logging.getLogger("mike_sdk.backends.hf")


class HFOptions(BaseModel):
    """Constructor options of :class:`HFBackend`, validated."""

    model_config = ConfigDict(frozen=True)

    model: str | None = None
    revision: str | None = None
    device: str | None = None
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device_map: str | None = None
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = 16
    """Prompts per micro-batch, or ``"auto"``: chosen per call from free memory, halved
    where the device runs out of memory (see :func:`.hf_batching.auto_batch_size`)."""
    gguf_file: str | None = None
    trust_remote_code: bool = False
    prefix_reuse: bool = True
    """Encode a prompt prefix shared by several requests once (see :mod:`.hf_prefix`)."""
    compile: bool = False
    """On CUDA, generate with a static key/value cache, which ``transformers`` compiles
    (``torch.compile``); requests continued from a shared prefix keep the dynamic cache."""


@BACKENDS.register("hf")
class HFBackend(Backend):
    """A local ``transformers`` causal LM: greedy, batched, early stop, likelihoods."""

    needs, needs_extra = ("torch", "transformers"), "hf"

    def __init__(
        self,
        model: str | None = None,
        *,
        revision: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        device_map: str | None = None,
        batch_size: int | str = 16,
        gguf_file: str | None = None,
        trust_remote_code: bool = False,
        prefix_reuse: bool = True,
        compile: bool = False,
    ) -> None:
        try:
            self.options = HFOptions(
                model=model, revision=revision, device=device, dtype=dtype,  # type: ignore[arg-type]
                device_map=device_map, batch_size=batch_size,  # type: ignore[arg-type]
                gguf_file=gguf_file, trust_remote_code=trust_remote_code,
                prefix_reuse=prefix_reuse, compile=compile)
        except ValidationError as exc:
            raise invalid_options("the 'hf' backend", exc) from None
        require_extra("The 'hf' backend", self.needs, self.needs_extra)
        self.model: Any = None
        """The loaded ``transformers`` model; ``None`` until first needed."""
        self._tokenizer: HFTokenizer | None = None
        self._identity: Identity | None = None
        self._lock = threading.Lock()
        self._sizer = BatchSizer(self.options.batch_size)
        if compile and not self._device().startswith("cuda"):
            logger.warning("compile=True works on CUDA only: on %s, generation runs without "
                           "it.", self._device())
        # Not in the identity: the reused keys and values are the ones the plain path computes.
        self._prefixes = PrefixReuse()

    def _local_folder(self) -> Path | None:
        if self.options.model is None:
            return None
        path = Path(self.options.model).expanduser()
        return path if path.is_dir() else None

    @property
    def identity(self) -> Identity:
        """``hf`` + model name + revision (GGUF sha256, folder fingerprint or hub revision)."""
        if self._identity is None:
            opts, folder = self.options, self._local_folder()
            suffix = f"/{opts.gguf_file}" if opts.gguf_file else ""
            # bfloat16 on a GPU and float32 on a CPU can answer differently: keep them apart.
            precision = self._precision()
            if opts.model is None:
                self._identity = Identity(kind="hf", model=EMBEDDED_MODEL_NAME,
                                          revision=embedded_revision(), precision=precision)
            elif folder is not None:
                # The folder's name, not its path: a moved folder keeps its cached answers.
                revision = opts.revision or folder_fingerprint(folder, opts.gguf_file)
                self._identity = Identity(kind="hf", model=folder.resolve().name + suffix,
                                          revision=revision, precision=precision)
            else:
                self._identity = Identity(kind="hf", model=opts.model + suffix,
                                          revision=opts.revision, precision=precision)
        return self._identity

    @property
    def abilities(self) -> Abilities:
        """Completion, tokenizer and likelihoods; chat only where cheaply known."""
        size = self._sizer.largest(self._device().startswith("cuda"))
        return Abilities(completion=True, chat=self._has_chat_template(), tokenizer=True,
                         loglikelihood=True, batch_size=size, max_concurrency=1)

    def _has_chat_template(self) -> bool:
        if self._tokenizer is not None and self._tokenizer.hf_loaded:
            return bool(getattr(self._tokenizer.hf, "chat_template", None))
        folder = self._local_folder()
        if folder is None:
            return False  # the embedded model is a base model; a hub id would need a download
        if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
            return True
        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(config, dict) and bool(config.get("chat_template"))

    def _source(self) -> str:
        if self.options.model is None:
            return str(embedded_model_dir())
        folder = self._local_folder()
        name = self.options.model
        if folder is None and name.startswith(("/", "./", "../", "~")):
            raise ConfigError(f"Model folder {name} does not exist: give a folder holding a "
                              "Hugging Face model (config.json, weights), or a hub id such "
                              "as google/gemma-3-270m.")
        if folder is not None and self.options.gguf_file is None \
                and not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} is not a model folder: it has no config.json. Give "
                              "the folder a Hugging Face model was saved to (or gguf_file= "
                              "for a GGUF file in it).")
        return str(folder) if folder is not None else name

    def _load_kwargs(self) -> dict[str, Any]:
        opts = self.options
        kwargs: dict[str, Any] = {"trust_remote_code": opts.trust_remote_code}
        if opts.revision is not None and self._local_folder() is None:
            kwargs["revision"] = opts.revision
        if opts.gguf_file is not None:
            kwargs["gguf_file"] = opts.gguf_file
        return kwargs

    def get_tokenizer(self) -> HFTokenizer:
        """The tokenizer, loaded once (without the model).

        Where the model folder has a plain ``tokenizer.json``, only that file is loaded (the
        ``transformers`` tokenizer follows when the model needs it); else ``AutoTokenizer``.
        """
        with self._lock:
            if self._tokenizer is None:
                path = self._tokenizer_file()
                try:
                    from tokenizers import Tokenizer
                except ImportError:  # transformers brings it; without it, AutoTokenizer says so
                    path = None
                if path is not None:
                    started = time.perf_counter()
                    self._tokenizer = HFTokenizer(fast=Tokenizer.from_file(str(path)),
                                                  load=self._auto_tokenizer, file=str(path))
                    logger.info("Loaded the tokenizer file of %s in %.1f s",
                                self.identity.model, time.perf_counter() - started)
            return self._tokenizer_locked()

    def _tokenizer_file(self) -> Path | None:
        """The folder's ``tokenizer.json``, where ``AutoTokenizer`` would encode exactly as it.

        Not for hub ids (the folder is not here), GGUF files (their own vocabulary), remote
        code, or configurations that make ``transformers`` rebuild the tokenizer.
        """
        opts = self.options
        if opts.gguf_file is not None or opts.trust_remote_code:
            return None
        if opts.model is None:
            folder = embedded_model_dir()
        else:
            found = self._local_folder()
            if found is None:
                return None
            folder = found
        return tokenizer_file(folder)

    def _auto_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        started = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(self._source(), **self._load_kwargs())
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        logger.info("Loaded the tokenizer of %s in %.1f s", self.identity.model,
                    time.perf_counter() - started)
        return tokenizer

    def _tokenizer_locked(self) -> HFTokenizer:
        if self._tokenizer is None:
            self._tokenizer = HFTokenizer(self._auto_tokenizer())
        return self._tokenizer

    def _device(self) -> str:
        if self.options.device is not None:
            return self.options.device
        if not cuda_possible():
            return "cpu"  # known without importing torch (seconds a cached run saves)
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _precision(self) -> str:
        """The weights' dtype name (``float32``, ``bfloat16``, ...) without importing torch."""
        if self.options.dtype == "auto":
            return "bfloat16" if self._device().startswith("cuda") else "float32"
        return self.options.dtype

    def _dtype(self) -> torch.dtype:
        import torch

        dtype: torch.dtype = getattr(torch, self._precision())
        return dtype

    def _loaded(self) -> tuple[Any, Any]:
        """The model and the raw tokenizer, loading them on first use."""
        with self._lock:
            tokenizer = self._tokenizer_locked().hf
            if self.model is None:
                from transformers import AutoModelForCausalLM

                started = time.perf_counter()
                kwargs = self._load_kwargs() | {"dtype": self._dtype()}
                if self.options.device_map is not None:
                    kwargs["device_map"] = self.options.device_map
                auto: Any = AutoModelForCausalLM
                model = auto.from_pretrained(self._source(), **kwargs)
                if self.options.device_map is None:
                    model = model.to(self._device())
                self.model = model.eval()
                logger.info("Loaded model %s (%s, %s) in %.1f s", self.identity.model,
                            kwargs["dtype"], self.model.device, time.perf_counter() - started)
            return self.model, tokenizer

    async def aclose(self) -> None:
        """Free the model and its prefix caches (the small tokenizer stays)."""
        with self._lock:
            if self.model is None:
                return
            self.model = None
            self._prefixes.clear()
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Greedy generations in micro-batches of similar prompt length, in request order."""
        return await asyncio.to_thread(self._generate_sync, list(requests)) if requests else []

    @property
    def prefix_stats(self) -> PrefixStats:
        """Prompt tokens run, prefix encodings, reuses and fallbacks since construction."""
        return self._prefixes.stats

    def _prompt_text(self, tokenizer: Any, request: GenerationRequest) -> tuple[str, bool]:
        """The text to tokenize, and whether the tokenizer adds its special tokens."""
        if request.prompt is not None:
            # With special tokens, as the paper does (``tokenizer(prompt)``): Gemma needs BOS.
            return request.prompt, True
        if request.messages is None:
            raise BackendError("A generation request needs a prompt or messages.")
        elif not getattr(tokenizer, "chat_template", None):
            raise BackendError(f"Model {self.identity.model!r} has no chat template, so it takes "
                               "completion prompts only: send requests with a 'prompt'.")
        else:
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=False)
            # The template already holds BOS and the turn markers.
            return str(text), False

    def _generate_sync(self, requests: list[GenerationRequest]) -> list[Generation]:
        import torch

        model, tokenizer = self._loaded()
        texts = [self._prompt_text(tokenizer, r) for r in requests]

        def tokenize(text: str, special: bool) -> list[int]:
            return list(tokenizer(text, add_special_tokens=special)["input_ids"])

        encoded = [tokenize(text, special) for text, special in texts]
        if not all(encoded):
            raise BackendError("The prompt encodes to no tokens; there is nothing to continue.")
        results: dict[int, Generation] = {}
        static = self.options.compile and model.device.type == "cuda"

        def run(size: int) -> None:  # skips what an earlier try answered
            plain = [i for i in range(len(requests)) if i not in results]
            if self.options.prefix_reuse:
                shared = self._prefixes.plan([texts[i] for i in plain],
                                             [encoded[i] for i in plain], tokenize)
                rows = {plain[j]: (encoded[plain[j]], prefix, requests[plain[j]])
                        for j, prefix in shared.items()}
                self._prefixes.generate(model, tokenizer, rows, size, results)
                plain = [i for i in plain if i not in results]
            # Longest first: similar lengths share a batch (little padding), and running out
            # of memory shows on the first batch rather than the last.
            plain.sort(key=lambda i: -len(encoded[i]))
            for start in range(0, len(plain), size):
                chunk = plain[start : start + size]
                prompts = [encoded[i] for i in chunk]
                input_ids, attention_mask = left_pad(prompts, int(tokenizer.pad_token_id))
                batch = generate_rows(model, tokenizer, input_ids, attention_mask,
                                      [requests[i] for i in chunk], [len(p) for p in prompts],
                                      static=static)
                self.prefix_stats.prompt_tokens += sum(len(p) for p in prompts)
                results.update(zip(chunk, batch, strict=True))

        with torch.inference_mode():
            self._sizer.run(model, run, max(map(len, encoded)),
                          max(r.max_new_tokens for r in requests))
        return [results[i] for i in range(len(requests))]

    async def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[Likelihood]:
        """Summed log-probability of each continuation after its context (the paper's way)."""
        return await asyncio.to_thread(self._loglikelihood_sync, list(requests)) \
            if requests else []

    def _loglikelihood_sync(self, requests: list[LikelihoodRequest]) -> list[Likelihood]:
        import torch

        model, tokenizer = self._loaded()
        encoded: list[tuple[list[int], int]] = []
        for r in requests:
            # As the paper: encode the joined text, score as many final tokens as the
            # continuation has on its own (the join may merge tokens at the seam).
            ids = list(tokenizer(r.context + r.continuation)["input_ids"])
            n = len(tokenizer.encode(r.continuation, add_special_tokens=False))
            encoded.append((ids, min(n, len(ids) - 1)))  # the first token has no prediction
        results = {i: Likelihood(logprob=0.0, tokens=0)
                   for i, (_, n) in enumerate(encoded) if n <= 0}

        def run(size: int) -> None:  # skips what an earlier try answered
            todo = sorted((i for i in range(len(encoded)) if i not in results),
                          key=lambda i: -len(encoded[i][0]))
            for start in range(0, len(todo), size):
                chunk = todo[start : start + size]
                scores = score_batch(model, int(tokenizer.pad_token_id),
                                     [encoded[i] for i in chunk])
                for i, score in zip(chunk, scores, strict=True):
                    results[i] = Likelihood(logprob=score, tokens=encoded[i][1])

        with torch.inference_mode():
            self._sizer.run(model, run, max(len(ids) for ids, _ in encoded),
                          max(n for _, n in encoded))
        return [results[i] for i in range(len(requests))]
