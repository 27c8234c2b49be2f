"""The shared ASGI runner: a real uvicorn server on a loopback socket."""

from __future__ import annotations

import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mike_sdk.errors import MikeError
from mike_sdk.web import LocalServer, is_loopback


def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.url.path)


APP = Starlette(routes=[Route("/{rest:path}", _echo)])


def test_serves_on_a_free_port_and_stops() -> None:
    server = LocalServer(APP)
    with server.running() as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/a/b").text == "/a/b"
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/", timeout=2)


def test_a_port_in_use_is_one_clear_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(MikeError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            LocalServer(APP, port=port).bind()
    finally:
        taken.close()


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("192.168.1.4", False), ("example.org", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
