"""How a failed backend call is classified, so one retry layer can act on it.

Backends raise these (they translate their SDK's or server's errors); the shared
retry and rate-limit code in the core decides what to do:

| class | examples | what the run does |
|---|---|---|
| :class:`RateLimited` | 429 | wait at least ``retry_after``, then retry |
| :class:`Transient` | 5xx, 503, timeouts, dropped connections | retry with jittered backoff |
| :class:`Unreachable` | refused connection, unknown host | retry; give up soon if never reached |
| :class:`BadRequest` | 400, 413, 422 | record the error on its item, go on |
| :class:`AuthFailed` | 401, 403 | stop the run at once, naming what to fix |
| :class:`ModelNotFound` | 404 model | stop the run at once |

Messages never contain a secret: build them from status codes and server text only.
The official SDKs' exceptions (``openai`` and ``anthropic`` share their names:
``APIStatusError``, ``APITimeoutError``, ``APIConnectionError``, ``APIError``) become
these classes in :func:`translate`; the SDK module is a parameter, never imported here.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from mike_sdk.errors import BackendError


class CallFailed(BackendError):
    """A backend call failed; subclasses say whether and when to retry."""

    retryable = False
    billed = False
    """Whether the provider most likely billed the failed call (an answer it cut short)."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        """HTTP status, where there was one."""
        self.retry_after = retry_after
        """Seconds the server asked us to wait, where it said."""


class RateLimited(CallFailed):
    """The provider's rate limit was hit (429)."""

    retryable = True


class Transient(CallFailed):
    """A failure that may not happen again: 5xx, overload, timeout, dropped connection."""

    retryable = True


class TimedOut(Transient):
    """No answer within the timeout: retried, and each retry said on stderr (a server
    that never answers would otherwise be minutes of silence)."""


class Unreachable(Transient):
    """No connection to the server (refused, unknown host, dropped before any answer):
    retried, but a run that has not reached the server yet gives up within seconds."""


class BadRequest(CallFailed):
    """The request itself was refused (400): recorded on its item, never retried."""


class AuthFailed(CallFailed):
    """The credentials were refused (401/403): the run stops at once."""


class ModelNotFound(CallFailed):
    """The model does not exist for this account (404): the run stops at once."""


_DURATION = re.compile(r"^(?:([\d.]+)h)?(?:([\d.]+)m(?!s))?(?:([\d.]+)s)?(?:([\d.]+)ms)?$")


def _seconds(value: str) -> float | None:
    """A wait as seconds: ``1.5``, ``20ms``, ``1m30s``, ``6m0s`` or an HTTP date."""
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    match = _DURATION.match(text)
    if match and any(match.groups()):
        hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds + millis / 1000
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The longest wait any rate-limit header asks for, in seconds, or ``None``.

    Reads ``retry-after-ms``, ``retry-after`` (seconds or HTTP date),
    ``x-ratelimit-reset-*`` (OpenAI: ``1s``, ``6m0s``, ``20ms``) and
    ``anthropic-ratelimit-*-reset`` (an RFC 3339 time).

    >>> retry_after({"retry-after-ms": "1500"})
    1.5
    >>> retry_after({"x-ratelimit-reset-requests": "1m30s", "retry-after": "2"})
    90.0
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    waits: list[float] = []
    if "retry-after-ms" in lowered:
        with contextlib.suppress(ValueError):
            waits.append(max(0.0, float(lowered["retry-after-ms"]) / 1000))
    for key, value in lowered.items():
        seconds: float | None = None
        if key == "retry-after" or key.startswith("x-ratelimit-reset"):
            seconds = _seconds(value)
        elif key.startswith("anthropic-ratelimit-") and key.endswith("-reset"):
            seconds = _rfc3339_wait(value)
        if seconds is not None and math.isfinite(seconds):
            waits.append(seconds)
    return max(waits) if waits else None


def _rfc3339_wait(value: str) -> float | None:
    from datetime import datetime

    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, when.timestamp() - time.time())


def classify_status(status: int, message: str, headers: Mapping[str, str] | None = None,
                    *, key_hint: str = "the API key") -> CallFailed:
    """The failure class of an HTTP error status.

    ``key_hint`` names what to fix on 401/403, e.g. "the OPENAI_API_KEY environment variable".
    """
    wait = retry_after(headers or {})
    if status == 429:
        return RateLimited(f"Rate limited (429): {message}", status=status, retry_after=wait)
    if status in (401, 403):
        return AuthFailed(f"Authentication failed ({status}): {message}. Check {key_hint}.",
                          status=status)
    if status == 404:
        return ModelNotFound(f"Not found (404): {message}. Check the model name and base URL.",
                             status=status)
    if status in (408, 409) or status >= 500:
        return Transient(f"Server error ({status}): {message}", status=status, retry_after=wait)
    return BadRequest(f"Request refused ({status}): {message}", status=status)


# -- the official SDKs' exceptions ---------------------------------------------------

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
