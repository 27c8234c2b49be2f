"""A loopback OpenAI- and Anthropic-wire server that bills, and misbehaves on purpose.

It answers ``POST /v1/chat/completions`` and ``POST /v1/messages`` with "Paris" and, like a
provider, bills every completion it sends as a 200, whether or not the client lives to read
it. Every billed 200 is logged (body hash, tokens, USD), so tests and ``bench/bench_money.py``
compare what a run reports with what it was billed. Its :class:`Misbehaviour` knobs can
change while it runs:

* ``refuse``: the share of prompts refused with a 400 (the same prompts every time, as a
  content filter does);
* ``malformed``: the share of answers that come back as a 200 that is no completion: cut
  JSON (billed: the model ran), an HTML page or an error object (not billed), in turn or
  only ``kind``;
* ``usage``: whether answers report token usage;
* ``tokens_per_byte``: tokens billed per prompt byte (above 1 passes any bound a client
  can compute from the prompt's bytes);
* ``latency_s`` and ``stall``: the time to answer, and the share of calls never answered;
* ``answers``: what it answers (chosen by prompt), "Paris" by default;
* ``echo_auth``: refusals quote the ``Authorization`` header they were sent (as some
  servers do), so that tests can check it is redacted.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from servers import post_server

#: USD per million tokens the server bills (the price file the clients get says the same).
INPUT_PER_M, OUTPUT_PER_M = 1.0, 4.0
MODEL = "billed-model"
MALFORMED = ("cut json", "html", "error object")
ANSWER = "Paris"


def price_file_text() -> str:
    """A price file (JSON) with the server's own rates for :data:`MODEL`."""
    return json.dumps({MODEL: {"input": INPUT_PER_M, "output": OUTPUT_PER_M}})


def _share(text: str, salt: str) -> float:
    """A stable number in [0, 1) for ``text``."""
    return int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:8], 16) / 2**32


@dataclass
class Misbehaviour:
    """What the server does wrong (read per request: a test may change it)."""

    refuse: float = 0.0
    malformed: float = 0.0
    kind: str | None = None
    usage: bool = True
    tokens_per_byte: float = 1.0
    latency_s: float = 0.0
    stall: float = 0.0
    stall_s: float = 3600.0
    echo_auth: bool = False
    answers: tuple[str, ...] = (ANSWER,)


@dataclass
class Bill:
    """Every billed 200, in order: ``(body hash, input tokens, output tokens, USD)``."""

    lines: list[tuple[str, int, int, float]] = field(default_factory=list)

    @property
    def usd(self) -> float:
        """USD billed in all."""
        return sum(line[3] for line in self.lines)

    @property
    def calls(self) -> int:
        """200s billed."""
        return len(self.lines)

    def distinct(self) -> int:
        """Distinct request bodies billed."""
        return len({line[0] for line in self.lines})

    def twice(self) -> int:
        """Billed calls beyond the first per body (paid again)."""
        return self.calls - self.distinct()


class BillingServer:
    """The server on 127.0.0.1 (a thread); ``url`` is its root (no ``/v1``)."""

    def __init__(self, misbehaviour: Misbehaviour | None = None, seed: int = 0) -> None:
        self.knobs = misbehaviour or Misbehaviour()
        self.bill = Bill()
        self.statuses: Counter[str] = Counter()
        self.in_flight = 0
        """Requests received and not answered yet (billed all the same if the client dies)."""
        self.billed_at: list[float] = []
        """Monotonic times of the billed 200s."""
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.httpd = post_server(
            lambda path, raw, headers: self.answer(path, raw, headers.get("authorization", "")),
            keep_alive=True, queue=256)  # 64 clients connect at once
        # A killed client resets its connections: nothing to report.
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path: str, raw: bytes, auth: str) -> tuple[int, str, bytes]:
        """Status, content type and body for one request."""
        with self._lock:
            self.in_flight += 1
        try:
            return self._answer(path, raw, auth)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, path: str, raw: bytes, auth: str) -> tuple[int, str, bytes]:
        knobs = self.knobs
        body = json.loads(raw or b"{}")
        anthropic = path.endswith("/messages")
        # What a tokenizer sees: the texts, not the JSON around them.
        prompt = "".join(str(m.get("content", "")) for m in body.get("messages", [])) \
            + str(body.get("system", "")) + str(body.get("prompt", ""))
        with self._lock:
            roll, stall = self._random.random(), self._random.random()
        if knobs.stall and stall < knobs.stall:
            self.statuses["stalled"] += 1
            time.sleep(knobs.stall_s)
        if knobs.refuse and _share(prompt, "refuse") < knobs.refuse:
            self.statuses["400"] += 1
            told = f" (sent with {auth})" if knobs.echo_auth else ""
            return 400, "application/json", json.dumps({"type": "error", "error": {
                "type": "invalid_request_error",
                "message": f"Content filter: this prompt was refused{told}"}}).encode()
        if knobs.latency_s:
            time.sleep(knobs.latency_s)
        if knobs.malformed and roll < knobs.malformed:
            kind = knobs.kind or MALFORMED[int(roll / knobs.malformed * 3) % 3]
            self.statuses[kind] += 1
            if kind == "html":
                return 200, "text/html", b"<html><body>Maintenance</body></html>"
            if kind == "error object":
                return 200, "application/json", b'{"error": {"message": "overloaded"}}'
            data = self._completion(raw, prompt, anthropic, body)
            return 200, "application/json", data[: len(data) // 2]
        self.statuses["200"] += 1
        return 200, "application/json", self._completion(raw, prompt, anthropic, body)

    def _completion(self, raw: bytes, prompt: str, anthropic: bool,
                    body: dict[str, Any]) -> bytes:
        """A completion, billed as it is made."""
        knobs = self.knobs
        tokens_in = max(1, round(len(prompt.encode()) * knobs.tokens_per_byte))
        answer = knobs.answers[int(_share(prompt, "answer") * len(knobs.answers))]
        tokens_out = len(answer.encode())
        usd = (tokens_in * INPUT_PER_M + tokens_out * OUTPUT_PER_M) / 1e6
        with self._lock:
            self.bill.lines.append((hashlib.sha256(raw).hexdigest()[:16], tokens_in,
                                    tokens_out, usd))
            self.billed_at.append(time.monotonic())
        if anthropic:
            message: dict[str, Any] = {
                "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
                "stop_sequence": None}
            if knobs.usage:
                message["usage"] = {"input_tokens": tokens_in, "output_tokens": tokens_out}
            return json.dumps(message).encode()
        completion: dict[str, Any] = {
            "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}]}
        if knobs.usage:
            completion["usage"] = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                                   "total_tokens": tokens_in + tokens_out}
        return json.dumps(completion).encode()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
