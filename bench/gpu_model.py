"""The random Llama-3.1-8B-shaped model of ``bench/bench_gpu_paths.py``.

:func:`make_model` builds a model of Llama-3.1-8B's architecture (or the 2-layer ``tiny``
one of the same shape family, for a check on the CPU) with RANDOM weights, made on the
device in bfloat16, and saves it with ``save_pretrained`` to a folder together with a real
tokenizer, where the benchmark's backends load it as any model folder. A marker file in
the folder lets a later run reuse the model instead of making it again.
"""

from __future__ import annotations

import gc
import json
import shutil
import time
from pathlib import Path
from typing import Any

from gpu_prompts import BOS, EOS

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
ARCHS: dict[str, dict[str, int]] = {
    "llama-3.1-8b": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "intermediate_size": 14336},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "intermediate_size": 128},
}
LLAMA_VOCAB = 128_256


def llama_config(arch: str, vocab: int) -> Any:
    """The ``LlamaConfig`` of ``arch`` with ``vocab`` tokens: Llama 3.1's RoPE (llama3,
    theta 500,000), untied embeddings, its BOS and EOS."""
    from transformers import LlamaConfig

    return LlamaConfig(
        **ARCHS[arch], vocab_size=vocab, max_position_embeddings=131_072, rms_norm_eps=1e-5,
        rope_theta=500_000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        tie_word_embeddings=False, bos_token_id=BOS, eos_token_id=EOS, hidden_act="silu",
        attention_bias=False, mlp_bias=False, initializer_range=0.02)


def make_model(arch: str, folder: Path, tokenizer: Path, device: str) -> str:
    """Random weights of ``arch`` made on ``device`` in bfloat16, saved to ``folder`` with
    the tokenizer; reused where the folder already holds the same thing."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    size = Tokenizer.from_file(str(tokenizer / "tokenizer.json")).get_vocab_size(True)
    config = llama_config(arch, max(LLAMA_VOCAB, size))
    marker = {"arch": arch, "vocab": config.vocab_size, "tokenizer_bytes":
              (tokenizer / "tokenizer.json").stat().st_size}
    if (folder / "bench_model.json").is_file() and json.loads(
            (folder / "bench_model.json").read_text()) == marker:
        return f"reused {folder}"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    finally:
        torch.set_default_dtype(default)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    made = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters())
    placed = {p.device.type for p in model.parameters()}
    if placed != {torch.device(device).type}:
        raise SystemExit(f"the random model's weights are on {placed}, not on {device}")
    model.generation_config.bos_token_id, model.generation_config.eos_token_id = BOS, EOS
    model.save_pretrained(str(folder))
    for name in TOKENIZER_FILES:
        if (tokenizer / name).is_file():
            shutil.copyfile(tokenizer / name, folder / name)
    (folder / "bench_model.json").write_text(json.dumps(marker))
    del model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return (f"made {params / 1e9:.2f} B random parameters ({arch}, vocabulary "
            f"{config.vocab_size}) on {device} in {made:.1f} s, saved in "
            f"{time.perf_counter() - started - made:.1f} s to {folder}")
