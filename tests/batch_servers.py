"""Loopback stand-ins for OpenAI's Batch API and Anthropic's Message Batches.

The real batch services cannot be reached from the test machines; this server stands in
for both, on the standard library's ThreadingHTTPServer, and answers every request of a
batch exactly as the strict stand-in of the live APIs does (``openai_reply`` and
``messages_reply`` of tests/strict_api.py: same rules, same refusals, same answers). Its
state (files, batches, results) is kept on disk, so that a new server on the same folder
and port carries on where a stopped one left off (a restart while a client polls).

What it implements, and where each behaviour comes from:

* OpenAI (https://platform.openai.com/docs/guides/batch,
  https://platform.openai.com/docs/api-reference/batch, .../api-reference/files):
  ``POST /v1/files`` (multipart, ``purpose=batch``, a JSONL of ``custom_id``/``method``/
  ``url``/``body`` lines, at most 50,000 lines and 200 MB), ``GET /v1/files/{id}/content``,
  ``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window="24h"``,
  ``metadata``), ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``,
  ``GET /v1/batches`` (newest first, ``after``/``limit``). States ``validating`` ->
  ``in_progress`` -> ``finalizing`` -> ``completed``; ``failed`` when the input file does
  not validate (``errors.data`` with the line); ``cancelling`` -> ``cancelled``;
  ``expired`` when the window ends, with the requests done so far in the output file.
  Answers (status 200) go to the output file, refusals (``response.status_code`` 4xx/5xx
  with the error body) and requests not run (``error.code`` ``batch_expired`` /
  ``batch_cancelled``) to the error file; ``request_counts`` = total/completed/failed.
* Anthropic (https://docs.anthropic.com/en/docs/build-with-claude/batch-processing,
  https://docs.anthropic.com/en/api/creating-message-batches, .../retrieving-message-batches,
  .../listing-message-batches, .../canceling-message-batches, .../retrieving-message-batch-results):
  ``POST /v1/messages/batches`` (``requests`` of ``custom_id`` matching
  ``^[a-zA-Z0-9_-]{1,64}$``, unique, and ``params``; at most 100,000 and 256 MB),
  ``GET /v1/messages/batches/{id}``, ``POST .../cancel``, ``GET /v1/messages/batches``
  (newest first, ``after_id``/``before_id``/``limit``), results JSONL at ``results_url``
  (in no particular order) with ``succeeded``/``errored``/``canceled``/``expired`` per
  request. States ``in_progress`` -> ``ended``, ``canceling`` -> ``ended``;
  ``request_counts`` = processing/succeeded/errored/canceled/expired.

The live endpoints (``/v1/chat/completions``, ``/v1/completions``, ``/v1/messages``) are
served too, by the strict stand-in's own routes, so that a live run and a batch run reach
the same base URL (the same backend identity, hence the same cache keys).

Billing (:meth:`BatchServer.bill_usd`): every answered request, live at the list price,
in a batch at half of it (both providers' batch pricing), once however often a batch's
results are read; requests that errored, expired or were cancelled cost nothing. OpenAI's
batch ``metadata`` takes at most 16 pairs (keys up to 64 characters, values up to 512).

Fault knobs (:class:`Knobs`): the next batch expires with only its first N requests done;
requests whose body contains a string fail with a status (500: retryable, 400: refused);
:meth:`BatchServer.restart`. ``counts`` counts the HTTP calls by kind.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import itertools
import json
import math
import os
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servers import free_port
from strict_api import (
    ROUTES,
    STRICT_ANTHROPIC_KEY,
    STRICT_OPENAI_KEY,
    Refusal,
    messages_reply,
    openai_reply,
)

from mike_sdk.calls.pricing import PriceTable

OPENAI_LIMITS = (50_000, 200 * 1024 * 1024)
ANTHROPIC_LIMITS = (100_000, 256 * 1024 * 1024)
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
ENDPOINTS = ("/v1/chat/completions", "/v1/completions")
LIVE = ("/v1/chat/completions", "/v1/completions", "/v1/messages")
_ids = itertools.count(1)


@dataclass
class Knobs:
    """Timings (seconds) and faults; changed by tests between or during runs."""

    validating_s: float = 0.02
    in_progress_s: float = 0.1
    finalizing_s: float = 0.02
    expire_next: int | None = None
    """The next batch created expires with only its first N requests done (then reset)."""
    fail: dict[str, list[int]] = field(default_factory=dict)
    """Substring of a request line (custom_id included) -> [HTTP status, times left (-1:
    always)] for requests that fail."""


class Fail(Exception):
    """An error reply: status and JSON payload."""


def _oai_error(status: int, message: str, kind: str = "invalid_request_error") -> Fail:
    return Fail(status, {"error": {"message": message, "type": kind, "param": None,
                                   "code": None}})


def _ant_error(status: int, message: str, kind: str = "invalid_request_error") -> Fail:
    return Fail(status, {"type": "error", "error": {"type": kind, "message": message}})


def _rfc3339(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat().replace(
        "+00:00", "Z")


class BatchServer:
    """Both batch interfaces on one loopback port, state under ``folder``."""

    def __init__(self, folder: Path, knobs: Knobs | None = None) -> None:
        self.folder = folder
        (folder / "files").mkdir(parents=True, exist_ok=True)
        self.knobs = knobs or Knobs()
        self.counts: Counter[str] = Counter()
        self.live_bodies: list[dict[str, Any]] = []
        """The bodies of the live calls served (to compare with the batch lines)."""
        self.billed: list[tuple[str, bool, dict[str, Any]]] = []
        """What the provider charges for: (model, in a batch, usage) of each request it
        answered, live or in a batch (a batch's once, however often its results are read)."""
        self.lock = threading.RLock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._start()

    # -- lifecycle -----------------------------------------------------------------------

    def _start(self) -> None:
        state = self.folder / "state.json"
        self.state: dict[str, Any] = json.loads(state.read_text()) if state.exists() else {
            "files": {}, "batches": {}, "messages": {}}
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def restart(self, down_s: float = 0.0) -> None:
        """Stop serving, forget everything held in memory, and serve again from disk."""
        self._server.shutdown()
        self._server.server_close()
        time.sleep(down_s)
        self._start()
        self.counts["restart"] += 1

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _save(self) -> None:
        tmp = self.folder / "state.json.tmp"
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.folder / "state.json")

    def creates(self, provider: str) -> int:
        return self.counts[f"{provider}.create"]

    def submitted_bodies(self) -> list[dict[str, Any]]:
        """The request bodies of every batch received (OpenAI files, Anthropic params)."""
        bodies = [line["body"] for b in self.state["batches"].values()
                  for line in self._lines(b["input_file_id"])]
        for b in self.state["messages"].values():
            requests = json.loads((self.folder / f"{b['id']}.requests.json").read_text())
            bodies += [r["params"] for r in requests]
        return bodies

    def bill_usd(self, prices: PriceTable) -> float:
        """The bill: every answered request at its model's list price, batch requests at
        the batch rates (OpenAI's usage counts cached prompt tokens inside
        ``prompt_tokens``; Anthropic's counts cache reads apart from ``input_tokens``)."""
        total = 0.0
        for model, batch, usage in self.billed:
            if "prompt_tokens" in usage:
                cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
                tokens = (usage["prompt_tokens"], usage["completion_tokens"], cached)
            else:
                cached = usage.get("cache_read_input_tokens") or 0
                tokens = (usage["input_tokens"] + cached
                          + (usage.get("cache_creation_input_tokens") or 0),
                          usage["output_tokens"], cached)
            cost = prices.cost(model, tokens[0], tokens[1], tokens[2], batch=batch)
            assert cost is not None, f"no price for {model}"
            total += cost
        return total

    # -- answering one request -----------------------------------------------------------

    def _failure(self, line: dict[str, Any]) -> int | None:
        text = json.dumps(line)
        for needle, rule in self.knobs.fail.items():
            if needle in text and rule[1] != 0:
                rule[1] -= 1 if rule[1] > 0 else 0
                return rule[0]
        return None

    def _answer_openai(self, line: dict[str, Any], url: str) -> tuple[int, dict[str, Any]]:
        status = self._failure(line)
        if status is not None:
            return status, _oai_error(status, "The server had an error processing your request."
                                      if status >= 500 else "Invalid request (test).").args[1]
        try:
            body = line["body"]
            return 200, openai_reply(body, url == "/v1/chat/completions", str(body.get("model")))
        except Refusal as refusal:
            return refusal.args[0], refusal.args[1]

    def _answer_anthropic(self, request: dict[str, Any], version: str) -> dict[str, Any]:
        params = request["params"]
        status = self._failure(request)
        if status is not None:
            kind = "api_error" if status >= 500 else "invalid_request_error"
            return {"type": "errored", "error": {"type": "error", "error": {
                "type": kind, "message": "Internal server error (test)." if status >= 500
                else "Invalid request (test)."}, "request_id": f"req_b{next(_ids)}"}}
        try:
            return {"type": "succeeded",
                    "message": messages_reply(params, str(params.get("model", "")), version)}
        except Refusal as refusal:
            return {"type": "errored", "error": refusal.args[1]}

    # -- OpenAI --------------------------------------------------------------------------

    def _file(self, purpose: str, name: str, data: bytes) -> dict[str, Any]:
        file_id = f"file-{next(_ids):06d}{int(time.time() * 1000) % 10**6:06d}"
        (self.folder / "files" / file_id).write_bytes(data)
        meta = {"id": file_id, "object": "file", "bytes": len(data),
                "created_at": int(time.time()), "filename": name, "purpose": purpose,
                "status": "processed", "expires_at": None, "status_details": None}
        self.state["files"][file_id] = meta
        return meta

    def _advance_openai(self, b: dict[str, Any]) -> None:
        if b["status"] in ("completed", "failed", "expired", "cancelled"):
            return
        k, now = self.knobs, time.time()
        t = now - b["_t0"]
        if b.get("_cancel_at") is not None:
            if now - b["_cancel_at"] >= k.finalizing_s:
                self._finish_openai(b, self._done_at(b, b["_cancel_at"]), "cancelled")
            return
        if t >= b["_v"] and b["status"] == "validating":
            problem = self._validate_openai(b)
            if problem is not None:
                b.update(status="failed", failed_at=int(now), errors={"object": "list",
                                                                       "data": [problem]})
                return
            b.update(status="in_progress", in_progress_at=int(now))
        if b.get("_expire") is not None and t >= b["_v"] + b["_p"]:
            self._finish_openai(b, b["_expire"], "expired")
        elif t >= b["_v"] + b["_p"] + b["_f"]:
            self._finish_openai(b, b["request_counts"]["total"], "completed")
        elif t >= b["_v"] + b["_p"]:
            b.update(status="finalizing", finalizing_at=b.get("finalizing_at") or int(now))
        elif b["status"] == "in_progress":
            b["request_counts"]["completed"] = self._done_at(b, now)

    def _done_at(self, b: dict[str, Any], when: float) -> int:
        ran = max(0.0, when - b["_t0"] - b["_v"])
        return int(min(b["request_counts"]["total"], math.floor(
            b["request_counts"]["total"] * ran / max(b["_p"], 1e-9))))

    def _lines(self, file_id: str) -> list[dict[str, Any]]:
        data = (self.folder / "files" / file_id).read_bytes()
        return [json.loads(raw) for raw in data.splitlines() if raw.strip()]

    def _validate_openai(self, b: dict[str, Any]) -> dict[str, Any] | None:
        meta = self.state["files"][b["input_file_id"]]
        if meta["bytes"] > OPENAI_LIMITS[1]:
            return {"code": "file_too_large", "message": "The file exceeds 200 MB.",
                    "line": None, "param": None}
        seen: set[str] = set()
        models: set[str] = set()
        try:
            lines = self._lines(b["input_file_id"])
        except ValueError:
            return {"code": "invalid_json_line", "message": "A line is not JSON.",
                    "line": None, "param": None}
        if len(lines) > OPENAI_LIMITS[0]:
            return {"code": "too_many_requests", "message": "At most 50,000 requests.",
                    "line": None, "param": None}
        for number, line in enumerate(lines, 1):
            custom_id, body = line.get("custom_id"), line.get("body")
            problem = ("missing custom_id" if not isinstance(custom_id, str) else
                       "duplicate custom_id" if custom_id in seen else
                       "method must be POST" if line.get("method") != "POST" else
                       f"url must be {b['endpoint']}" if line.get("url") != b["endpoint"] else
                       "body must be an object" if not isinstance(body, dict) else None)
            if problem is None and isinstance(body, dict):
                models.add(str(body.get("model")))
                if len(models) > 1:
                    problem = "every request of a batch must use the same model"
            if problem is not None:
                return {"code": "invalid_request", "message": problem, "line": number,
                        "param": None}
            seen.add(str(custom_id))
        b["request_counts"]["total"] = len(lines)
        return None

    def _finish_openai(self, b: dict[str, Any], done: int, status: str) -> None:
        out: list[bytes] = []
        errors: list[bytes] = []
        completed = failed = 0
        for i, line in enumerate(self._lines(b["input_file_id"])):
            entry: dict[str, Any] = {"id": f"batch_req_{next(_ids)}",
                                     "custom_id": line["custom_id"]}
            if i < done:
                code, body = self._answer_openai(line, b["endpoint"])
                entry.update(response={"status_code": code, "request_id": f"req_{next(_ids)}",
                                       "body": body}, error=None)
                if code == 200:
                    self.billed.append((body["model"], True, body["usage"]))
                (out if code == 200 else errors).append(json.dumps(entry).encode())
                completed, failed = completed + (code == 200), failed + (code != 200)
            else:
                code_name = "batch_expired" if status == "expired" else "batch_cancelled"
                message = ("This request could not be executed before the completion window "
                           "expired." if status == "expired" else
                           "This request was not executed because the batch was cancelled.")
                entry.update(response=None, error={"code": code_name, "message": message})
                errors.append(json.dumps(entry).encode())
        now = int(time.time())
        if out:
            b["output_file_id"] = self._file("batch_output", "batch_output.jsonl",
                                             b"\n".join(out) + b"\n")["id"]
        if errors:
            b["error_file_id"] = self._file("batch_output", "batch_error.jsonl",
                                            b"\n".join(errors) + b"\n")["id"]
        b["request_counts"].update(completed=completed, failed=failed)
        b.update(status=status, **{f"{status}_at": now})

    # -- Anthropic -----------------------------------------------------------------------

    def _advance_anthropic(self, b: dict[str, Any]) -> None:
        if b["processing_status"] == "ended":
            return
        now = time.time()
        if b.get("_cancel_at") is not None:
            if now - b["_cancel_at"] >= self.knobs.finalizing_s:
                self._finish_anthropic(b, self._ant_done_at(b, b["_cancel_at"]), "canceled")
            return
        if b.get("_expire") is not None and now - b["_t0"] >= b["_p"]:
            self._finish_anthropic(b, b["_expire"], "expired")
        elif now - b["_t0"] >= b["_p"]:
            self._finish_anthropic(b, b["_total"], "")

    def _ant_done_at(self, b: dict[str, Any], when: float) -> int:
        return min(b["_total"], math.floor(b["_total"] * (when - b["_t0"]) / max(b["_p"], 1e-9)))

    def _finish_anthropic(self, b: dict[str, Any], done: int, rest: str) -> None:
        path = self.folder / f"{b['id']}.requests.json"
        requests = json.loads(path.read_text())
        lines: list[bytes] = []
        counts = Counter[str]()
        for i, request in enumerate(requests):
            result = self._answer_anthropic(request, b["_version"]) if i < done \
                else {"type": rest}
            counts[result["type"]] += 1
            if result["type"] == "succeeded":
                message = result["message"]
                self.billed.append((message["model"], True, message["usage"]))
            lines.append(json.dumps({"custom_id": request["custom_id"], "result": result}
                                    ).encode())
        lines.reverse()  # "not guaranteed to be in the same order as requests"
        (self.folder / f"{b['id']}.results.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        b["request_counts"] = {"processing": 0, "succeeded": counts["succeeded"],
                               "errored": counts["errored"], "canceled": counts["canceled"],
                               "expired": counts["expired"]}
        b.update(processing_status="ended", ended_at=_rfc3339(time.time()),
                 results_url=f"{self.url}/v1/messages/batches/{b['id']}/results")

    # -- routes --------------------------------------------------------------------------

    def route(self, h: _Handler, method: str, path: str, query: dict[str, str],
              raw: bytes) -> tuple[int, Any, str]:
        """Status, payload (JSON, or bytes for file contents) and content type."""
        with self.lock:
            if path.startswith("/v1/messages/batches"):
                self._ant_auth(h)
                result = self._anthropic(h, method, path, query, raw)
            else:
                if h.headers.get("authorization") != f"Bearer {STRICT_OPENAI_KEY}":
                    raise _oai_error(401, "Incorrect API key provided.")
                result = self._openai(h, method, path, query, raw)
            self._save()
            return result

    def _ant_auth(self, h: _Handler) -> None:
        if h.headers.get("x-api-key") != STRICT_ANTHROPIC_KEY:
            raise _ant_error(401, "invalid x-api-key", "authentication_error")
        if not h.headers.get("anthropic-version"):
            raise _ant_error(400, "anthropic-version: header is required")

    def _public(self, b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def _openai(self, h: _Handler, method: str, path: str, query: dict[str, str],
                raw: bytes) -> tuple[int, Any, str]:
        batches = self.state["batches"]
        if method == "POST" and path == "/v1/files":
            self.counts["openai.upload"] += 1
            fields = _multipart(h.headers.get("content-type", ""), raw)
            if fields.get("purpose", (b"", ""))[0] != b"batch" or "file" not in fields:
                raise _oai_error(400, "Expected a file and purpose=batch.")
            data, name = fields["file"]
            if len(data) > OPENAI_LIMITS[1]:
                raise _oai_error(400, "File exceeds 200 MB.")
            return 200, self._file("batch", name, data), "application/json"
        if m := re.fullmatch(r"/v1/files/([^/]+)/content", path):
            self.counts["openai.download"] += 1
            if m.group(1) not in self.state["files"]:
                raise _oai_error(404, f"No such File object: {m.group(1)}")
            return 200, (self.folder / "files" / m.group(1)).read_bytes(), \
                "application/octet-stream"
        if method == "POST" and path == "/v1/batches":
            self.counts["openai.create"] += 1
            body = json.loads(raw or b"{}")
            file_id = body.get("input_file_id")
            if file_id not in self.state["files"] or \
                    self.state["files"][file_id]["purpose"] != "batch":
                raise _oai_error(400, f"Invalid input_file_id: {file_id}")
            if body.get("endpoint") not in ENDPOINTS or body.get("completion_window") != "24h":
                raise _oai_error(400, "Invalid endpoint or completion_window.")
            metadata = body.get("metadata") or {}
            if not isinstance(metadata, dict) or len(metadata) > 16 or any(
                    not isinstance(v, str) or len(str(key)) > 64 or len(v) > 512
                    for key, v in metadata.items()):
                raise _oai_error(400, "metadata: at most 16 pairs, keys up to 64 characters, "
                                 "string values up to 512.")
            if len(body.get("metadata") or {}) > 16:
                raise _oai_error(400, "metadata: at most 16 keys.")
            k, now = self.knobs, time.time()
            b = {"id": f"batch_{next(_ids):06d}{int(now * 1000) % 10**6:06d}", "object": "batch",
                 "endpoint": body["endpoint"], "errors": None, "input_file_id": file_id,
                 "completion_window": "24h", "status": "validating", "output_file_id": None,
                 "error_file_id": None, "created_at": int(now), "in_progress_at": None,
                 "expires_at": int(now) + 86400, "finalizing_at": None, "completed_at": None,
                 "failed_at": None, "expired_at": None, "cancelling_at": None,
                 "cancelled_at": None, "metadata": body.get("metadata"),
                 "request_counts": {"total": len(self._lines(file_id)), "completed": 0,
                                    "failed": 0},
                 "_t0": now, "_v": k.validating_s, "_p": k.in_progress_s,
                 "_f": k.finalizing_s, "_expire": k.expire_next}
            k.expire_next = None
            batches[b["id"]] = b
            return 200, self._public(b), "application/json"
        if method == "GET" and path == "/v1/batches":
            self.counts["openai.list"] += 1
            ordered = sorted(batches.values(), key=lambda b: (b["_t0"], b["id"]), reverse=True)
            if "after" in query:
                ids = [b["id"] for b in ordered]
                ordered = ordered[ids.index(query["after"]) + 1:] if query["after"] in ids \
                    else []
            limit = int(query.get("limit", 20))
            page = ordered[:limit]
            for b in page:
                self._advance_openai(b)
            return 200, {"object": "list", "data": [self._public(b) for b in page],
                         "first_id": page[0]["id"] if page else None,
                         "last_id": page[-1]["id"] if page else None,
                         "has_more": len(ordered) > limit}, "application/json"
        if m := re.fullmatch(r"/v1/batches/([^/]+)(/cancel)?", path):
            b = batches.get(m.group(1))
            if b is None:
                raise _oai_error(404, f"No batch found with id '{m.group(1)}'.")
            self._advance_openai(b)
            if m.group(2) and method == "POST":
                self.counts["openai.cancel"] += 1
                if b["status"] in ("validating", "in_progress", "finalizing"):
                    b.update(status="cancelling", cancelling_at=int(time.time()),
                             _cancel_at=time.time())
            else:
                self.counts["openai.retrieve"] += 1
            return 200, self._public(b), "application/json"
        raise _oai_error(404, f"Invalid URL ({method} {path})")

    def _anthropic(self, h: _Handler, method: str, path: str, query: dict[str, str],
                   raw: bytes) -> tuple[int, Any, str]:
        batches = self.state["messages"]
        if method == "POST" and path == "/v1/messages/batches":
            self.counts["anthropic.create"] += 1
            if len(raw) > ANTHROPIC_LIMITS[1]:
                raise _ant_error(413, "Request exceeds the maximum size", "request_too_large")
            requests = json.loads(raw or b"{}").get("requests")
            if not isinstance(requests, list) or not 1 <= len(requests) <= ANTHROPIC_LIMITS[0]:
                raise _ant_error(400, "requests: between 1 and 100,000 requests")
            seen: set[str] = set()
            for r in requests:
                cid = r.get("custom_id") if isinstance(r, dict) else None
                if not isinstance(cid, str) or not CUSTOM_ID.fullmatch(cid):
                    raise _ant_error(400, "requests.custom_id: String should match pattern "
                                     "'^[a-zA-Z0-9_-]{1,64}$'")
                if cid in seen:
                    raise _ant_error(400, f"Duplicate custom_id: {cid}")
                if not isinstance(r.get("params"), dict):
                    raise _ant_error(400, "requests.params: Field required")
                seen.add(cid)
            now, k = time.time(), self.knobs
            batch_id = f"msgbatch_{next(_ids):06d}{int(now * 1000) % 10**6:06d}"
            (self.folder / f"{batch_id}.requests.json").write_text(json.dumps(requests))
            b = {"id": batch_id, "type": "message_batch", "processing_status": "in_progress",
                 "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0,
                                    "canceled": 0, "expired": 0},
                 "ended_at": None, "created_at": _rfc3339(now),
                 "expires_at": _rfc3339(now + 86400), "archived_at": None,
                 "cancel_initiated_at": None, "results_url": None,
                 "_t0": now, "_p": k.validating_s + k.in_progress_s, "_total": len(requests),
                 "_expire": k.expire_next,
                 "_version": h.headers.get("anthropic-version")}
            k.expire_next = None
            batches[batch_id] = b
            return 200, self._public(b), "application/json"
        if method == "GET" and path == "/v1/messages/batches":
            self.counts["anthropic.list"] += 1
            ordered = sorted(batches.values(), key=lambda b: (b["_t0"], b["id"]), reverse=True)
            ids = [b["id"] for b in ordered]
            if "after_id" in query:
                ordered = ordered[ids.index(query["after_id"]) + 1:] \
                    if query["after_id"] in ids else []
            elif "before_id" in query:
                ordered = ordered[:ids.index(query["before_id"])] \
                    if query["before_id"] in ids else []
            limit = int(query.get("limit", 20))
            page = ordered[:limit]
            for b in page:
                self._advance_anthropic(b)
            return 200, {"data": [self._public(b) for b in page], "has_more": len(ordered) > limit,
                         "first_id": page[0]["id"] if page else None,
                         "last_id": page[-1]["id"] if page else None}, "application/json"
        m = re.fullmatch(r"/v1/messages/batches/([^/]+)(/cancel|/results)?", path)
        if m is None or m.group(1) not in batches:
            raise _ant_error(404, f"Not found: {path}", "not_found_error")
        b = batches[m.group(1)]
        self._advance_anthropic(b)
        if m.group(2) == "/results":
            self.counts["anthropic.download"] += 1
            if b["processing_status"] != "ended":
                raise _ant_error(400, "Batch has not ended yet.")
            return 200, (self.folder / f"{b['id']}.results.jsonl").read_bytes(), \
                "application/binary"
        if m.group(2) == "/cancel" and method == "POST":
            self.counts["anthropic.cancel"] += 1
            if b["processing_status"] == "in_progress":
                b.update(processing_status="canceling",
                         cancel_initiated_at=_rfc3339(time.time()), _cancel_at=time.time())
        else:
            self.counts["anthropic.retrieve"] += 1
        return 200, self._public(b), "application/json"


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[bytes, str]]:
    """The fields of a multipart/form-data body: name -> (bytes, filename)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = (payload if isinstance(payload, bytes) else b"",
                             str(part.get_filename() or ""))
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        path, query = urllib.parse.unquote(url.path), dict(urllib.parse.parse_qsl(url.query))
        raw = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
        owner: BatchServer = self.server.owner  # type: ignore[attr-defined]
        if method == "POST" and path in LIVE:  # the live APIs too: same base URL, same keys
            self._live(path, query, raw)
            return
        try:
            status, payload, kind = owner.route(self, method, path, query, raw)
        except Fail as fail:
            status, payload, kind = fail.args[0], fail.args[1], "application/json"
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _live(self, path: str, query: dict[str, str], raw: bytes) -> None:
        self.query = query
        try:
            body = json.loads(raw)
            self.server.owner.live_bodies.append(body)  # type: ignore[attr-defined]
            route, match = next((r, m) for p, r in ROUTES if (m := p.fullmatch(path)))
            status, payload = 200, route(self, body, *match.groups())
            if isinstance(payload, dict) and "usage" in payload and "model" in payload:
                self.server.owner.billed.append(  # type: ignore[attr-defined]
                    (payload["model"], False, payload["usage"]))
        except Refusal as refusal:
            status, payload = refusal.args[0], refusal.args[1]
        self.server.owner.counts["live"] += 1  # type: ignore[attr-defined]
        data = json.dumps(payload).encode()
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


@pytest.fixture
def batch_server(tmp_path: Path) -> Iterator[BatchServer]:
    """A fresh loopback batch server (both providers), its state under tmp_path."""
    server = BatchServer(tmp_path / "batch-server")
    yield server
    server.close()
