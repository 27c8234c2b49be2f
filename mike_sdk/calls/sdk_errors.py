"""How an official provider SDK's exceptions become :mod:`mike_sdk.calls.failures`
classes, with no secret in their messages.

Both official SDKs (``openai`` and ``anthropic``) share the exception names this reads
(``APIStatusError`` with ``status_code`` and ``response.headers``, ``APITimeoutError``,
``APIConnectionError``, ``APIError``), so the SDK module is a parameter, never imported
here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from mike_sdk.calls.failures import (
    BadRequest,
    CallFailed,
    TimedOut,
    Unreachable,
    classify_status,
)

__all__ = ["REDACTED", "redact", "translate", "without_credentials"]

REDACTED = "***"


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***`` (servers may echo a refused key)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part (for messages, logs and records).

    >>> without_credentials("http://user:pw@gpu1:8000/v1")
    'http://gpu1:8000/v1'
    """
    parts = urlsplit(url)
    if parts.password or parts.username:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return parts.geturl()


MAX_MESSAGE = 500


def _server_message(exc: Any) -> str:
    """The server's own error text where the body has one, else the SDK's message
    (cut short: a proxy may answer with a whole HTML page)."""
    body = getattr(exc, "body", None)
    text = str(getattr(exc, "message", "") or type(exc).__name__)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            text = str(error["message"])
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while (nxt := exc.__cause__ or exc.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        exc = nxt
    return exc


def _is_connection_error(exc: BaseException) -> bool:
    """A refused, reset or dropped connection, as opposed to a slow server."""
    if isinstance(exc, ConnectionError):
        return True
    # aiohttp's names, without importing it (it is optional).
    return type(exc).__name__ in ("ClientConnectorError", "ServerDisconnectedError",
                                  "ClientOSError", "ClientConnectionResetError")


def translate(exc: BaseException, sdk: ModuleType, *, key_env: str,
              secrets: Sequence[str], where: str = "the server") -> CallFailed | None:
    """The :mod:`mike_sdk.calls.failures` class of an SDK exception, or ``None`` if not the SDK's.

    Works for both official SDKs: they share ``APIStatusError`` (with ``status_code`` and
    ``response.headers``), ``APITimeoutError`` and ``APIConnectionError``.
    """
    hint = f"the {key_env} environment variable (or api_key=...)"
    if isinstance(exc, sdk.APIStatusError):
        headers = dict(exc.response.headers)
        message = redact(_server_message(exc), secrets)
        return classify_status(int(exc.status_code), message, headers, key_hint=hint)
    if isinstance(exc, sdk.APIConnectionError):  # APITimeoutError is one too
        root = _root_cause(exc)
        # The aiohttp transport reports every connection error as a timeout: name what
        # really happened.
        if isinstance(exc, sdk.APITimeoutError) and not _is_connection_error(root):
            return TimedOut(f"The request to {where} timed out: no answer within the "
                            "timeout (raise timeout= if the server is slow).")
        detail = type(root).__name__ if root is not exc else "connection error"
        return Unreachable(f"Could not reach {where} ({detail}): is the server running and "
                           "the base URL right?")
    if isinstance(exc, sdk.APIError):
        return BadRequest(redact(f"The API refused the call: {exc}", secrets))
    return None
