"""A loopback API server and a minimal real HTTP backend for the rate-limit and fault benches
(the backend also serves the evaluator's tests, against their own fault servers).

The server enforces R requests per minute the way providers do, over short
intervals: a token bucket refilled at R/60 per second holding one second's worth.
Beyond it, it answers 429 with ``retry-after-ms`` (the time until the next slot).
It can also fail a fraction of calls with a mix of 429, 500 and 503, and counts
the 200 answers per request body (to prove no finished item is sent twice).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from mike_sdk.backend import (
    Abilities,
    Backend,
    Generation,
    GenerationRequest,
    Identity,
)
from mike_sdk.calls.failures import classify_status


def body_of(request: GenerationRequest) -> bytes:
    """The exact bytes the backend sends for ``request``."""
    return json.dumps({"prompt": request.prompt, "max_tokens": request.max_new_tokens},
                      sort_keys=True).encode()


def body_hash(body: bytes) -> str:
    """Short id of a request body."""
    return hashlib.sha256(body).hexdigest()[:16]


class LoopbackServer:
    """127.0.0.1 server: rpm enforcement, random faults, per-body counts."""

    def __init__(self, rpm: float | None = None, fail_rate: float = 0.0,
                 latency_s: float = 0.05, seed: int = 0) -> None:
        self.rate = rpm / 60 if rpm else None
        self.capacity = max(1.0, self.rate) if self.rate else 0.0
        self.level = self.capacity
        self.stamp = time.monotonic()
        self.fail_rate = fail_rate
        self.latency_s = latency_s
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.answered: Counter[str] = Counter()
        """200 answers per body hash."""
        self.first_answer: dict[str, float] = {}
        self.statuses: Counter[int] = Counter()
        self.times: list[float] = []
        """Monotonic times of the 200 answers."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                status, headers, payload = server.answer(body)
                raw = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for key, value in {**headers, "content-type": "application/json",
                                       "content-length": str(len(raw))}.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed mid-call (the kill-and-resume bench)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Status, headers and JSON payload for one request."""
        with self.lock:
            now = time.monotonic()
            if self.rate:
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.level < 1:
                    wait = (1 - self.level) / self.rate
                    self.statuses[429] += 1
                    return 429, {"retry-after-ms": str(int(wait * 1000) + 1)}, {
                        "error": "rate limit"}
                self.level -= 1
            if self.fail_rate and self.random.random() < self.fail_rate:
                status = self.random.choice((429, 500, 503))
                self.statuses[status] += 1
                headers = {"retry-after-ms": "100"} if status == 429 else {}
                return status, headers, {"error": f"injected {status}"}
        time.sleep(self.latency_s)
        request = json.loads(body)
        with self.lock:
            key = body_hash(body)
            self.answered[key] += 1
            self.first_answer.setdefault(key, time.monotonic())
            self.statuses[200] += 1
            self.times.append(time.monotonic())
        return 200, {}, {"text": 'Paris" Question', "input_tokens": len(request["prompt"]) // 4,
                         "output_tokens": 3}

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


class LoopbackBackend(Backend):
    """A minimal real HTTP backend: one request per call, up to 8 in flight."""

    def __init__(self, base_url: str, timeout: float = 10.0, max_concurrency: int = 8, *,
                 identity: Identity | None = None, key_hint: str = "LOOPBACK_KEY") -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._abilities = Abilities(batch_size=1, max_concurrency=max_concurrency)
        self._identity = identity or Identity(kind="loopback", model="loopback-model")
        self._key_hint = key_hint
        self._client: httpx.AsyncClient | None = None

    @property
    def identity(self) -> Identity:
        """A made-up model (the benches price it with their own price file)."""
        return self._identity

    @property
    def abilities(self) -> Abilities:
        """One request per call, bounded concurrency."""
        return self._abilities

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """POST one request; HTTP errors become :mod:`mike_sdk.calls.failures`."""
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout,
                                             limits=httpx.Limits(max_connections=64))
        (request,) = requests
        response = await self._client.post("/v1/complete", content=body_of(request),
                                           headers={"content-type": "application/json"})
        if response.status_code != 200:
            raise classify_status(response.status_code, response.json()["error"],
                                  response.headers, key_hint=self._key_hint)
        data = response.json()
        return [Generation(text=data["text"], input_tokens=data["input_tokens"],
                           output_tokens=data["output_tokens"],
                           cached_input_tokens=data.get("cached_input_tokens"),
                           finish_reason="stop")]

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
