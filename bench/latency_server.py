"""An OpenAI-compatible chat server on loopback that answers every request after a fixed
latency and counts the requests in flight (for ``bench_concurrency.py``).

It stands in for a provider whose only limit is latency: it checks what the real
``/v1/chat/completions`` checks for these requests (a bearer key; ``model``; a non-empty
``messages`` list of role/content turns; a positive integer token limit), answers 401 or
400 otherwise, and serves ``GET /stats`` with the peak and total requests in flight.

With ``serial`` it serves one request at a time (the others wait their turn), like a
server whose model runs one request at a time (``bench_fleet.py``).

Run it on its own: ``python bench/latency_server.py PORT LATENCY_S [serial]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time

ROLES = {"system", "user", "assistant", "developer"}


class Stats:
    """Requests in flight now, their peak, and the answers given."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.answered = 0
        self.refused = 0
        self.first = 0.0
        """Monotonic time the first request arrived."""
        self.last = 0.0
        """Monotonic time the last answer was sent."""
        self.area = 0.0
        """Integral of requests in flight over time (mean in flight = area / busy time)."""
        self._stamp = 0.0

    def change(self, delta: int) -> None:
        """A request arrived (+1) or was answered (-1)."""
        now = time.monotonic()
        if self._stamp:
            self.area += self.in_flight * (now - self._stamp)
        self._stamp = now
        self.in_flight += delta
        self.peak = max(self.peak, self.in_flight)


def check(headers: dict[str, str], body: dict[str, object]) -> tuple[int, str]:
    """The status the real API would give these headers and body, and why."""
    if not headers.get("authorization", "").startswith("Bearer ") \
            or len(headers["authorization"]) < 12:
        return 401, "Incorrect API key provided."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return 400, "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
            for m in messages):
        return 400, "'messages' must be a non-empty list of {role, content} objects"
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        return 400, "max_tokens must be a positive integer"
    return 200, ""


def completion(body: dict[str, object], seq: int) -> dict[str, object]:
    """A chat completion whose answer depends only on the request."""
    text = f'Answer {abs(hash(json.dumps(body["messages"]))) % 997}"'
    return {"id": f"chatcmpl-{seq}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103}}


async def serve(port: int, latency_s: float, serial: bool = False) -> None:
    """Serve until killed."""
    stats = Stats()
    turn = asyncio.Lock()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = raw.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                data = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path.startswith("/stats"):
                    status, payload = 200, {"peak": stats.peak, "answered": stats.answered,
                                            "refused": stats.refused,
                                            "busy_s": stats.last - stats.first,
                                            "mean_in_flight": stats.area / max(
                                                stats.last - stats.first, 1e-9)}
                else:
                    stats.first = stats.first or time.monotonic()
                    stats.change(+1)
                    try:
                        body = json.loads(data or b"{}")
                        status, why = check(headers, body)
                        async with turn if serial else contextlib.nullcontext():
                            await asyncio.sleep(latency_s)
                    finally:
                        stats.change(-1)
                    stats.last = time.monotonic()
                    if status == 200:
                        stats.answered += 1
                        payload = completion(body, stats.answered)
                    else:
                        stats.refused += 1
                        payload = {"error": {"message": why, "type": "invalid_request_error"}}
                out = json.dumps(payload).encode()
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                             f"content-length: {len(out)}\r\n\r\n".encode() + out)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:] == ["serial"]))
