"""What a 200 from a hosted API must hold before it is read as an answer.

Servers and proxies answer 200 with things that are no completion: an HTML page (a
login or maintenance page), a JSON error object (``{"error": {...}}``, as some
OpenAI-compatible servers do when overloaded), a truncated or invalid JSON body, or a
completion with no choice or no content. Each becomes a :class:`Transient` failure that
names the server, so the one retry layer tries again and, if it keeps happening, the
run stops with one line instead of a traceback. A missing ``usage`` is no failure: the
client charges such an answer at its request's upper bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mike_sdk.calls.failures import Transient

__all__ = ["checked", "not_json"]

#: Characters of an unexpected body quoted in the message.
QUOTED = 80


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTED else flat[:QUOTED] + "..."


def not_json(where: str, detail: str) -> Transient:
    """The failure of a 200 whose body does not parse as JSON: an answer cut short, most
    likely billed (the client counts it at the cost of the answer that follows)."""
    failure = Transient(f"{where} answered 200 with a body that is not valid JSON "
                        f"({detail}); retrying.")
    failure.billed = True
    return failure


def checked(response: Any, where: str, needs: str) -> Any:
    """``response`` (the SDK's parsed body) if it is a completion holding ``needs`` (the
    field an answer is read from: ``choices``, ``content``); else :class:`Transient`."""
    if isinstance(response, str | bytes):  # the SDKs return the text of non-JSON bodies
        text = response.decode(errors="replace") if isinstance(response, bytes) else response
        raise Transient(f"{where} answered 200 with a body that is not JSON "
                        f"({_quote(text)!r}): a proxy or login page? Retrying.")
    error = getattr(response, "error", None)
    if error is None and isinstance(getattr(response, "model_extra", None), Mapping):
        error = response.model_extra.get("error")
    if error:
        message = error.get("message", error) if isinstance(error, Mapping) else error
        raise Transient(f"{where} answered 200 with an error instead of a completion: "
                        f"{_quote(str(message))}; retrying.")
    if not getattr(response, needs, None):
        raise Transient(f"{where} answered 200 with no {needs} (overloaded or filtered?); "
                        "retrying.")
    return response
