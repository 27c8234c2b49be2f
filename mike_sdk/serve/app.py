"""The `mike serve` application: an OpenAI-compatible server over an edited model.

``POST /v1/chat/completions`` retrieves the edits relevant to the last user message,
states them in the strategy's prompt and answers through the one call path (cached,
rate-limited, priced); the reply names them in ``edits_applied`` (and the
``X-Mike-Edits`` header). ``/v1/edits`` adds, lists, updates and deletes edits.

Keys: when a token is configured every ``/v1`` route needs ``Authorization: Bearer
<token>``. That header is never passed on: the backend calls upstream with its own
credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mike_sdk.backend import GenerationRequest
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.failures import CallFailed
from mike_sdk.data.languages import normalize_language
from mike_sdk.editing import client_for
from mike_sdk.errors import MikeError
from mike_sdk.memory.edited import EditedModel
from mike_sdk.memory.records import Retrieved
from mike_sdk.memory.store import EditMemoryError, as_stored
from mike_sdk.records import Question
from mike_sdk.serve.wire import ChatRequest, completion, error_body, parse_chat, stream_events

Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str, **kwargs: Any) -> JSONResponse:
    return JSONResponse(error_body(message, **kwargs), status_code=status)


class EditServer:
    """The routes of one server: an edited model and, optionally, the bearer token."""

    def __init__(self, edited: EditedModel, *, token: str | None = None,
                 language: str = "en") -> None:
        self.edited = edited
        self.language = normalize_language(language)
        self._token = token
        self._client: ModelClient | None = None

    @property
    def model_name(self) -> str:
        """The name replies carry: the backend's model."""
        return self.edited.backend.identity.model

    def app(self) -> Starlette:
        """The ASGI application (serve it with mike_sdk.web.server.LocalServer)."""
        guard = self._guarded
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/models", guard(self.models), methods=["GET"]),
            Route("/v1/chat/completions", guard(self.chat), methods=["POST"]),
            Route("/v1/edits", guard(self.list_edits), methods=["GET"]),
            Route("/v1/edits", guard(self.add_edits), methods=["POST"]),
            Route("/v1/edits/{edit_id:path}", guard(self.get_edit), methods=["GET"]),
            Route("/v1/edits/{edit_id:path}", guard(self.update_edit), methods=["PUT",
                                                                                 "PATCH"]),
            Route("/v1/edits/{edit_id:path}", guard(self.delete_edit), methods=["DELETE"]),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        edited = self.edited
        with client_for(edited.model, edited.cache, edited.limits) as client:
            self._client = client
            try:
                yield
            finally:
                self._client = None
                await client.aclose()

    def _guarded(self, handler: Handler) -> Handler:
        async def checked(request: Request) -> Response:
            if self._token is not None:
                given = request.headers.get("authorization", "")
                scheme, _, value = given.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                        value.strip().encode(), self._token.encode()):
                    return _error(401, "Missing or wrong bearer token: send the token this "
                                  "server was started with as `Authorization: Bearer TOKEN` "
                                  "(the OpenAI clients' api_key).", code="invalid_api_key")
            return await handler(request)
        return checked

    # -- routes ----------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": self.model_name, "object": "model", "created": 0, "owned_by": "mike"}]})

    async def chat(self, request: Request) -> Response:
        try:
            body = parse_chat(await request.json())
            language = normalize_language(body.language or self.language)
        except (ValueError, MikeError) as exc:
            return _error(400, f"Bad chat request: {exc}")
        question = Question(text=body.question, language=language)
        found = (await asyncio.to_thread(self.edited.retrieve_many, [question.text]))[0]
        generation_request = self._request(body, question, found)
        assert self._client is not None, "the app's lifespan opens the client"
        try:
            answered = (await self._client.generate_many([generation_request]))[0]
        except CallFailed as exc:
            self._client.reset()  # the next request tries again
            return _error(exc.status if exc.status and exc.status < 500 else 502,
                          f"The backend failed: {exc}", kind="upstream_error")
        generation = answered.generation
        assert generation is not None
        answer = self.edited.strategy.extract(generation_request, generation.text)
        finish = "length" if generation.finish_reason == "length" else "stop"
        headers = {"X-Mike-Edits": ",".join(r.edit.id for r in found)}
        if body.stream:
            events = stream_events(self.model_name, answer, found, finish=finish)
            return StreamingResponse(iter(events), media_type="text/event-stream",
                                     headers=headers)
        return JSONResponse(completion(self.model_name, answer, found, finish=finish,
                                       prompt_tokens=generation.input_tokens,
                                       completion_tokens=generation.output_tokens),
                            headers=headers)

    def _request(self, body: ChatRequest, question: Question,
                 found: list[Retrieved]) -> GenerationRequest:
        """The strategy's request, with the conversation's earlier turns on a chat backend."""
        rendered = self.edited.strategy.render(self.edited.case(question, found),
                                               self.edited.backend.abilities)
        update: dict[str, Any] = {}
        if rendered.messages is not None and len(body.messages) > 1:
            *instruction, turn = rendered.messages
            update["messages"] = (*instruction, *body.history(), turn)
        budget = body.max_completion_tokens or body.max_tokens
        if budget is not None:
            update["max_new_tokens"] = budget
        return rendered.model_copy(update=update) if update else rendered

    async def list_edits(self, request: Request) -> Response:
        edits = await asyncio.to_thread(self.edited.memory.list)
        return JSONResponse({"object": "list", "data": [e.model_dump() for e in edits]})

    async def add_edits(self, request: Request) -> Response:
        try:
            body = await request.json()
            many = isinstance(body, dict) and "edits" in body
            given = body["edits"] if many else [body]
            if not isinstance(given, list) or not all(isinstance(e, dict) for e in given):
                raise EditMemoryError('send one edit object, or {"edits": [...]}.')
            edits = [as_stored(e, where=f"edit {n + 1}") for n, e in enumerate(given)]
            stored = await asyncio.to_thread(self.edited.memory.add_many, edits)
        except EditMemoryError as exc:
            return _error(409 if "already in" in str(exc) else 400, str(exc))
        except ValueError as exc:
            return _error(400, f"Bad JSON: {exc}")
        if many:
            return JSONResponse({"object": "list", "data": [e.model_dump() for e in stored]},
                                status_code=201)
        return JSONResponse(stored[0].model_dump(), status_code=201)

    async def get_edit(self, request: Request) -> Response:
        edit_id = request.path_params["edit_id"]
        found = await asyncio.to_thread(self.edited.memory.get, edit_id)
        if found is None:
            return _error(404, f"No edit with id {edit_id!r}.", code="not_found")
        return JSONResponse(found.model_dump())

    async def update_edit(self, request: Request) -> Response:
        edit_id = request.path_params["edit_id"]
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise EditMemoryError("send an object with question, answer or language.")
            fields = {k: body[k] for k in ("question", "answer", "language") if k in body}
            updated = await asyncio.to_thread(self.edited.memory.update, edit_id, **fields)
        except EditMemoryError as exc:
            return _error(404 if "no edit with id" in str(exc) else 400, str(exc))
        except ValueError as exc:
            return _error(400, f"Bad JSON: {exc}")
        return JSONResponse(updated.model_dump())

    async def delete_edit(self, request: Request) -> Response:
        edit_id = request.path_params["edit_id"]
        if not await asyncio.to_thread(self.edited.memory.delete, edit_id):
            return _error(404, f"No edit with id {edit_id!r}.", code="not_found")
        return JSONResponse({"id": edit_id, "object": "edit.deleted", "deleted": True})
