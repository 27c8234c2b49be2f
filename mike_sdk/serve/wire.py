"""The OpenAI chat-completions wire, as much of it as `mike serve` speaks.

Requests are read leniently (fields it does not use, such as ``temperature``, are
accepted and ignored, as OpenAI-compatible servers do); responses carry the fields
the official clients read, plus ``edits_applied``: the edits stated in the prompt.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mike_sdk.backend import ChatMessage
from mike_sdk.errors import problems
from mike_sdk.memory.records import Retrieved


class WireMessage(BaseModel):
    """One message of a chat request (text parts of a content list are joined)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    """Who speaks."""
    content: str | None = None
    """The text (None for an assistant turn that only called tools)."""

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, value: Any) -> Any:
        if isinstance(value, list):  # [{"type": "text", "text": ...}, ...]
            return "".join(p.get("text", "") for p in value
                           if isinstance(p, dict) and p.get("type") == "text")
        return value


class ChatRequest(BaseModel):
    """A ``POST /v1/chat/completions`` body."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    """The model asked for (any name: the server has one backend)."""
    messages: list[WireMessage] = Field(min_length=1)
    """The conversation; the edits are chosen for its last user message."""
    stream: bool = False
    """Reply as server-sent events."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Most tokens to generate (default: the strategy's answer budget)."""
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """The newer name of ``max_tokens``."""
    language: str | None = None
    """Extension: the question's language (demonstrations are shown in it)."""

    @property
    def question(self) -> str:
        """The last user message: what the edits are retrieved for."""
        for message in reversed(self.messages):
            if message.role == "user" and message.content:
                return message.content
        raise ValueError("no user message with text")

    def history(self) -> tuple[ChatMessage, ...]:
        """The turns before the last user message, as the backend takes them."""
        last = max(i for i, m in enumerate(self.messages) if m.role == "user" and m.content)
        role = {"developer": "system", "tool": "user"}
        return tuple(ChatMessage(role=role.get(m.role, m.role),  # type: ignore[arg-type]
                                 content=m.content or "") for m in self.messages[:last])


def parse_chat(body: Any) -> ChatRequest:
    """The request, or ValueError with one line naming the field."""
    try:
        request = ChatRequest.model_validate(body)
        request.question  # noqa: B018 - raises when there is none
    except ValidationError as exc:
        where, problem = problems(exc)[0]
        raise ValueError(f"field {where!r}: {problem}") from None
    return request


def applied(found: list[Retrieved]) -> list[dict[str, Any]]:
    """The ``edits_applied`` list: each edit with its similarity, most similar first."""
    return [{**r.edit.model_dump(), "score": round(r.score, 4)} for r in found]


def completion(model: str, answer: str, found: list[Retrieved], *, finish: str,
               prompt_tokens: int | None, completion_tokens: int | None) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    usage = {"prompt_tokens": prompt_tokens or 0, "completion_tokens": completion_tokens or 0,
             "total_tokens": (prompt_tokens or 0) + (completion_tokens or 0)}
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": finish, "logprobs": None}],
            "usage": usage, "edits_applied": applied(found)}


def stream_events(model: str, answer: str, found: list[Retrieved], *,
                  finish: str) -> list[str]:
    """The server-sent events of a streamed reply: the role and the edits first, the text,
    the finish reason, then ``[DONE]``. The backend answers whole, so the text comes in
    one piece."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], reason: str | None, **extra: Any) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": reason,
                                     "logprobs": None}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    return [chunk({"role": "assistant", "content": ""}, None, edits_applied=applied(found)),
            chunk({"content": answer}, None), chunk({}, finish), "data: [DONE]\n\n"]


def error_body(message: str, *, kind: str = "invalid_request_error",
               code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error object (the official clients show ``message``)."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
