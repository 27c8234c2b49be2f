"""Serve an ASGI app with uvicorn on a socket bound before the server starts.

Binding first means port 0 works (the OS picks a free port and the caller learns
it before any request), and a port already in use fails at once with a clear
error instead of inside uvicorn's start-up.

Example (a test, or a script embedding a server):

    >>> from starlette.applications import Starlette
    >>> from starlette.responses import PlainTextResponse
    >>> from starlette.routing import Route
    >>> app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    >>> with LocalServer(app).running() as url:
    ...     import httpx
    ...     httpx.get(url + "/").text
    'ok'
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mike_sdk.errors import MikeError


def require_web_extra(command: str) -> None:
    """Fail in one line when Starlette or uvicorn is missing, naming the extra."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MikeError(
            f"`{command}` needs the web server packages ({exc.name} is not installed). "
            "Install them with: pip install 'mike-sdk[web]'"
        ) from None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalServer:
    """One ASGI app on one bound socket; `serve()` blocks, `running()` runs it in a thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self._socket: socket.socket | None = None

    def bind(self) -> str:
        """Bind the socket now and return the base URL (``http://host:port``)."""
        if self._socket is None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                sock.close()
                raise MikeError(
                    f"cannot listen on {self.host}:{self.port}: {exc.strerror}. "
                    "Choose another --port (0 picks a free one) or stop the program using it."
                ) from None
            sock.listen(128)
            sock.set_inheritable(True)
            self._socket = sock
        return self.url

    @property
    def url(self) -> str:
        """The base URL clients use, once bound."""
        if self._socket is None:
            raise RuntimeError("bind() first")
        port = self._socket.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    def _server(self) -> Any:
        import uvicorn

        config = uvicorn.Config(self.app, log_level=self.log_level, lifespan="on",
                                access_log=False)
        return uvicorn.Server(config)

    def serve(self) -> None:
        """Serve until interrupted (Ctrl-C); the socket is bound first if needed."""
        self.bind()
        assert self._socket is not None
        self._server().run(sockets=[self._socket])

    @contextmanager
    def running(self, timeout: float = 10.0) -> Iterator[str]:
        """Serve in a background thread for the duration of the block; yields the URL."""
        url = self.bind()
        assert self._socket is not None
        server = self._server()
        # Signal handlers belong to the main thread; a server in a thread must not install them.
        server.install_signal_handlers = lambda: None
        thread = threading.Thread(target=server.run, kwargs={"sockets": [self._socket]},
                                  daemon=True, name="mike-web")
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server at {url} did not start")
            time.sleep(0.01)
        try:
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout)
            self._socket.close()
            self._socket = None
