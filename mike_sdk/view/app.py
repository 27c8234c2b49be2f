"""The web app of `mike view`: a JSON API over the runs' tables and one static page.

Only the runs named on the command line are served (by their position, never by a
path from the request); every response forbids scripts from anywhere but the page's own
files, and a request naming another host is refused (a web page elsewhere cannot reach
the viewer through DNS rebinding). The page shows data with ``textContent`` only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mike_sdk.errors import MikeError
from mike_sdk.view.cache import CachedRun
from mike_sdk.view.filters import parse_filter
from mike_sdk.view.library import Building, RunLibrary

__all__ = ["STATIC", "build_app"]

STATIC = Path(__file__).parent / "static"
#: Sent with every response: the page's own script and style only, nothing framed.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _describe(index: int, label: str, run: dict[str, Any]) -> dict[str, Any]:
    manifest = run["manifest"]
    return {"index": index, "label": label, "sources": list(run["sources"]),
            "rows": run["rows"], "scorers": list(run["scorers"]),
            "backend": manifest.get("backend"), "strategy": manifest.get("strategy"),
            "requests": manifest.get("requests"), "config": manifest.get("config")}


def build_app(runs: RunLibrary | list[CachedRun], labels: list[str],
              host: str = "127.0.0.1") -> Any:
    """The Starlette app serving ``runs`` (a library whose tables may still be building,
    or runs already cached) under ``labels``, answering requests addressed to ``host``
    (the loopback address it listens on) only. Until a run's tables are built, its rows,
    a row and comparisons answer 503 with the build's state (``building``, ``done``,
    ``message``); the summary and the list of runs answer at once."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    library = runs if isinstance(runs, RunLibrary) else RunLibrary.of(runs)

    def api(handler: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            from starlette.concurrency import run_in_threadpool

            try:
                return JSONResponse(await run_in_threadpool(handler, request))
            except Building as exc:  # the page shows the notice and asks again
                return JSONResponse(exc.state, status_code=503, headers={"Retry-After": "1"})
            except MikeError as exc:  # a bad filter or id: one line, shown by the page
                return JSONResponse({"error": str(exc)}, status_code=400)
        return endpoint

    def run_of(request: Request, name: str = "run") -> int:
        value = request.query_params.get(name, "0")
        if not value.isdigit():
            raise MikeError(f"bad {name}={value!r}: give a run's number "
                            f"(0..{len(labels) - 1}).")
        return int(value)

    def list_runs(request: Request) -> Any:
        return [_describe(i, label, library.describe(i)) for i, label in enumerate(labels)]

    def summary(request: Request) -> Any:
        index = run_of(request)
        run = library.describe(index)
        return {"run": _describe(index, labels[index], run), "summary": run["summary"],
                "facets": run.get("facets"), "build": library.state()}

    def rows(request: Request) -> Any:
        index = run_of(request)
        return library.tables(index).rows(index, parse_filter(dict(request.query_params)))

    def row(request: Request) -> Any:
        index = run_of(request)
        return library.tables(index).row(index, request.query_params.get("id", ""))

    def compare(request: Request) -> Any:
        view = parse_filter(dict(request.query_params))
        shown = request.query_params.get("runs", "")
        if shown and not all(part.isdigit() for part in shown.split(",")):
            raise MikeError(f"bad runs={shown!r}: give runs' numbers, comma-separated "
                            f"(0..{len(labels) - 1}).")
        a, b = run_of(request, "a"), run_of(request, "b")
        chosen = [int(part) for part in shown.split(",")] if shown else []
        tables = library.tables(a, b, *chosen) if chosen else library.tables()
        return tables.compare(a, b, view, chosen)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                      ) -> Response:
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    from starlette.middleware.base import BaseHTTPMiddleware

    return Starlette(
        routes=[Route("/", index), Route("/favicon.ico", no_icon),
                Route("/api/runs", api(list_runs)), Route("/api/summary", api(summary)),
                Route("/api/rows", api(rows)), Route("/api/row", api(row)),
                Route("/api/compare", api(compare)),
                Mount("/static", StaticFiles(directory=STATIC))],
        middleware=[Middleware(TrustedHostMiddleware,
                               allowed_hosts=[host.strip("[]"), "127.0.0.1", "localhost"]),
                    Middleware(BaseHTTPMiddleware, dispatch=headers)])
