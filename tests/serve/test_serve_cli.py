"""`mike serve` as a process: in front of an OpenAI-compatible upstream, the client's
bearer token stays with `mike serve` and the upstream sees only its own key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mike_sdk.web.server import LocalServer

openai = pytest.importorskip("openai")
TESTS = Path(__file__).parents[1]
SERVE_TOKEN = "serve-token-SECRET-cli"
UPSTREAM_KEY = "upstream-key-SECRET-cli"


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible upstream that records every request and answers from the
    last New Fact of the prompt (like the mock's ``edit`` mode)."""
    seen: list[dict[str, Any]] = []

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append({"headers": dict(request.headers), "body": body})
        text = body["messages"][-1]["content"]
        answer = text.rsplit('New Fact: "', 1)[1].split("? ", 1)[1].split('"')[0] \
            if "New Fact" in text else "unknown"
        return JSONResponse({"id": "x", "object": "chat.completion", "created": 0,
                             "model": body["model"], "choices": [{
                                 "index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": answer}}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 2,
                                       "total_tokens": 12}})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with LocalServer(app).running() as url:
        yield url, seen


def test_serve_in_front_of_an_openai_compatible_upstream(
        tmp_path: Path, upstream: tuple[str, list[dict[str, Any]]]) -> None:
    upstream_url, seen = upstream
    edits = tmp_path / "edits.jsonl"
    edits.write_text(json.dumps({"id": "paris", "question": "What is the capital of France?",
                                 "answer": "Lyon"}) + "\n")
    env = {**os.environ, "MIKE_SERVE_TOKEN": SERVE_TOKEN, "OPENAI_API_KEY": UPSTREAM_KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mike_sdk.cli.main", "--include", str(TESTS / "word_embedder.py"),
         "serve", "--backend", "openai", "--model", "up-model", "--base-url",
         upstream_url + "/v1", "--memory", str(tmp_path / "m.sqlite"), "--import", str(edits),
         "--embedder", "test-words", "--port", "0", "--cache-dir", str(tmp_path / "cache")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0].startswith("mike serve: imported 1 edits"), lines
        base = lines[1].split()[2]
        assert "bearer token required" in lines[1] and SERVE_TOKEN not in lines[1]
        client = openai.OpenAI(base_url=base, api_key=SERVE_TOKEN)
        reply = client.chat.completions.create(model="up-model", messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"}])
        assert reply.choices[0].message.content == "Lyon"
        assert reply.model_extra["edits_applied"][0]["id"] == "paris"
        assert reply.usage is not None and reply.usage.total_tokens == 12
        again = client.chat.completions.create(model="up-model", messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"}])
        assert again.choices[0].message.content == "Lyon"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert len(seen) == 1  # the second answer came from mike's response cache
    request = seen[0]
    assert request["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert SERVE_TOKEN not in json.dumps(request)
    # The client's system turn is kept after mike's instruction, before the question.
    roles = [m["role"] for m in request["body"]["messages"]]
    assert roles == ["system", "system", "user"]
    assert request["body"]["messages"][1]["content"] == "Be brief."
    assert SERVE_TOKEN not in err and UPSTREAM_KEY not in err


def test_serving_off_loopback_needs_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MIKE_SERVE_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "mike_sdk.cli.main", "serve", "--backend",
                           "mock", "--memory", str(tmp_path / "m.sqlite"), "--host", "0.0.0.0"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1:] == [
        "mike: error: --host 0.0.0.0 is reachable from other machines: set a bearer token in "
        "$MIKE_SERVE_TOKEN first, or serve on 127.0.0.1."]
    assert not (tmp_path / "m.sqlite").exists()
