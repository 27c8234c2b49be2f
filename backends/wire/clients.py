"""The provider SDKs' HTTP clients, reporting when a request's body has left the process.

A provider bills a request it received, whether or not the client lives to read the
answer; one still waiting for a connection, the rate limiter or a retry's pause was
never received. So the run's journal of requests in flight (``sending.jsonl``) records a
request only once its body is written to the socket, which each transport signals
(:func:`mike_sdk.backend.body_sent`):

* httpx (the SDKs' default): httpcore's ``trace`` request extension,
  ``http11.send_request_body.complete`` (``http2.…`` on HTTP/2), after the last byte;
* aiohttp: a ``TraceConfig``'s ``on_request_chunk_sent``, which aiohttp awaits just before
  it hands the body to the socket with no pause in between: a kill cannot fall between the
  journal line and the write, only before both (nothing sent) or after both.

The clients keep the SDKs' own defaults (connection limits, redirects) and the backend's
timeout.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from mike_sdk.backend import body_sent

__all__ = ["BODY_SENT_EVENTS", "aiohttp_client", "httpx_client"]

#: The httpcore trace events that mean "the whole request body is on the socket".
BODY_SENT_EVENTS = frozenset({"http11.send_request_body.complete",
                              "http2.send_request_body.complete"})


async def _trace(event: str, info: dict[str, Any]) -> None:
    if event in BODY_SENT_EVENTS:
        body_sent()


def _limits(sdk: ModuleType) -> Any:
    """The SDK's own connection limits (its default client's)."""
    return importlib.import_module(f"{sdk.__name__}._constants").DEFAULT_CONNECTION_LIMITS


def httpx_client(sdk: ModuleType, timeout: float) -> Any:
    """The SDK's default httpx client, with the ``trace`` extension on every request."""
    import httpx2

    class Traced(httpx2.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            request.extensions = {**request.extensions, "trace": _trace}
            return await super().handle_async_request(request)

    return sdk.DefaultAsyncHttpxClient(timeout=timeout, transport=Traced(limits=_limits(sdk)))


def aiohttp_client(sdk: ModuleType, timeout: float) -> Any:
    """The SDK's aiohttp client (raises ``RuntimeError`` or ``AttributeError`` where the
    SDK or aiohttp lacks it), its session traced."""
    import aiohttp

    vendored = importlib.import_module(f"{sdk.__name__}._vendor.httpx_aiohttp")

    async def chunk_sent(session: Any, context: Any, params: Any) -> None:
        body_sent()

    class Traced(vendored.AiohttpTransport):  # type: ignore[misc, name-defined]
        def get_client(self) -> aiohttp.ClientSession:
            # As the SDK's transport builds its session, plus the trace.
            tracing = aiohttp.TraceConfig()
            tracing.on_request_chunk_sent.append(chunk_sent)
            limit = self.limits.max_connections
            connector = aiohttp.TCPConnector(keepalive_timeout=self.limits.keepalive_expiry,
                                             ssl=self.ssl_context,
                                             **({} if limit is None else {"limit": limit}))
            return aiohttp.ClientSession(connector=connector, trace_configs=[tracing])

    return sdk.DefaultAioHttpClient(timeout=timeout, transport=Traced(limits=_limits(sdk)))
