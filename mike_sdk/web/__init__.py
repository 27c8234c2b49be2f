"""Local web servers (`mike view`, `mike serve`): one ASGI stack, Starlette under uvicorn."""

from mike_sdk.web.server import LocalServer, is_loopback, require_web_extra

__all__ = ["LocalServer", "is_loopback", "require_web_extra"]
