"""What the hosted-API backends share: keys, safe repr, failure translation.

The provider SDKs are imported lazily by the subclasses, never here, so that importing
:mod:`mike_sdk.backends` works without them. Retries, rate limits, the cache and
the one concurrency limit live in :class:`~mike_sdk.calls.client.ModelClient`: the SDK
clients are built with ``max_retries=0``, ``generate`` sends what it is given at once,
and every failure leaves as a :mod:`mike_sdk.calls.failures` class whose message holds
no secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from mike_sdk.backend import (
    Abilities,
    Backend,
    Generation,
    GenerationRequest,
    Identity,
    Likelihood,
    LikelihoodRequest,
)
from mike_sdk.calls.failures import (
    AuthFailed,
    BadRequest,
    CallFailed,
    Transient,
    Unreachable,
    classify_status,
)
from mike_sdk.errors import ConfigError, invalid_options
from mike_sdk.providers.profiles import ModelProfile, ProfileTable, Provider
from mike_sdk.providers.settings import DEFAULT_REASONING_BUDGET, RequestSettings, settings_for

__all__ = ["RemoteBackend", "RemoteOptions", "http_client", "redact", "resolve_key",
           "translate"]

REDACTED = "***"


class RemoteOptions(BaseModel):
    """Constructor options shared by the hosted-API backends, validated."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(min_length=1)
    """The provider's model name."""
    base_url: str | None = None
    """API root; ``None`` for the provider's default (or its ``*_BASE_URL`` variable)."""
    api_key: SecretStr | None = None
    """The key; ``None`` reads the provider's environment variable at the first call."""
    max_concurrency: int = Field(default=8, ge=1)
    """Default requests in flight at once (the client's limit unless ``--concurrency``)."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds before one request counts as timed out (a :class:`Transient` failure)."""
    transport: Literal["auto", "httpx", "aiohttp"] = "auto"
    """The SDK's HTTP transport: ``aiohttp`` (less client CPU per request, measured in
    ``bench/bench_concurrency.py``), the SDK's default ``httpx``, or ``auto``: aiohttp
    when it is installed."""
    @field_validator("base_url")
    @classmethod
    def _has_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (e.g. http://{value})")
        return value

    profile: str | None = None
    """The model profile entry to use by name (default: the first that matches the model;
    see ``mike backends --models``)."""
    profiles: str | None = None
    """A profile file that extends the shipped table (default: ``$MIKE_PROFILES``)."""
    reasoning_effort: str | None = None
    """Reasoning effort, one of the profile's ``efforts``; default: the lowest for OpenAI's
    reasoning models, no thinking for Claude."""
    reasoning_budget: int = Field(default=DEFAULT_REASONING_BUDGET, ge=1)
    """Tokens for hidden reasoning on top of the answer's budget (reasoning models only)."""


def http_client(sdk: ModuleType, options: RemoteOptions) -> Any:
    """The SDK's aiohttp-backed HTTP client where ``options.transport`` asks for it (or
    ``auto`` finds aiohttp), else None: the SDK's default transport."""
    wanted = options.transport
    if wanted == "httpx" or (wanted == "auto" and importlib.util.find_spec("aiohttp") is None):
        return None
    try:
        return sdk.DefaultAioHttpClient(timeout=options.timeout)
    except (AttributeError, RuntimeError):
        if wanted == "auto":
            return None
        raise ConfigError(f"transport='aiohttp' needs aiohttp for the {sdk.__name__} SDK: "
                          f"pip install '{sdk.__name__}[aiohttp]' (or transport='httpx')."
                          ) from None


def resolve_key(explicit: SecretStr | None, env_var: str) -> str:
    """The API key from the argument or ``env_var``; :class:`AuthFailed` naming it if neither."""
    key = explicit.get_secret_value() if explicit is not None else os.environ.get(env_var, "")
    if not key.strip():
        raise AuthFailed(f"No API key: set the {env_var} environment variable "
                         "(or pass api_key=...).")
    return key.strip()


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***`` (servers may echo a refused key)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def host_of(base_url: str) -> str:
    """``host[:port]`` of a URL, never its user or password part."""
    parts = urlsplit(base_url if "//" in base_url else f"//{base_url}")
    host = parts.hostname or base_url
    return f"{host}:{parts.port}" if parts.port else host


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
            return Transient("The request timed out (raise timeout= if the server is slow).")
        detail = type(root).__name__ if root is not exc else "connection error"
        return Unreachable(f"Could not reach {where} ({detail}): is the server running and "
                           "the base URL right?")
    if isinstance(exc, sdk.APIError):
        return BadRequest(redact(f"The API refused the call: {exc}", secrets))
    return None


class RemoteBackend(Backend):
    """Base of the hosted-API backends: one request per call, many calls in flight.

    Subclasses set ``kind``, ``key_env``, ``default_host`` and ``sdk_name`` and implement
    :meth:`_new_client` and :meth:`_generate_one`.
    """

    kind = "remote"
    provider: Provider = "openai"
    key_env = "API_KEY"
    base_url_env = "BASE_URL"
    default_host = ""
    sdk_name = ""

    def __init__(self, options: RemoteOptions) -> None:
        self.options = options
        self._base_url = options.base_url or os.environ.get(self.base_url_env) or None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.profile: ModelProfile = ProfileTable.load(options.profiles).find(
            self.provider, self.profile_model(), name=options.profile)
        self.settings: RequestSettings = settings_for(
            self.profile, reasoning_effort=options.reasoning_effort,
            reasoning_budget=options.reasoning_budget,
            option_hint="Set it with --backend-option reasoning_effort=VALUE.")

    def profile_model(self) -> str:
        """The model name that profiles match (a cloud deployment may say otherwise)."""
        return self.options.model

    @classmethod
    def _validate(cls, model_type: type[BaseModel], **values: Any) -> Any:
        try:
            return model_type(**values)
        except ValidationError as exc:
            secret = values.get("api_key")
            shown = secret.get_secret_value() if isinstance(secret, SecretStr) else ""
            raise invalid_options(f"the {cls.kind!r} backend", exc, [shown]) from None

    def __repr__(self) -> str:
        # Never the key, nor a user:password part of the URL.
        shown = self.options.model_dump(exclude={"api_key"})
        if self._base_url is not None:
            shown["base_url"] = self.where()
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def identity(self) -> Identity:
        """Kind and model; ``model@host[:port]`` when not the provider's own API."""
        model = self.options.model
        if self._base_url is not None and host_of(self._base_url) != self.default_host:
            model = f"{model}@{host_of(self._base_url)}"
        return Identity(kind=self.kind, model=model, settings=self.settings.tag())

    def request_settings(self) -> RequestSettings:
        """The settings every request is built from (the model's profile plus options)."""
        return self.settings

    @property
    def abilities(self) -> Abilities:
        """Chat messages, one request per batch, ``max_concurrency`` in flight."""
        return Abilities(completion=False, chat=True, tokenizer=False, loglikelihood=False,
                         batch_size=1, max_concurrency=self.options.max_concurrency)

    def _key(self) -> str:
        return resolve_key(self.options.api_key, self.key_env)

    def _new_client(self, key: str) -> Any:
        raise NotImplementedError

    def _client_here(self) -> Any:
        """The SDK client, built on first use and again under a new event loop (its
        connection pool belongs to the loop that opened it)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._new_client(self._key())
            self._loop = loop
        return self._client

    async def _generate_one(self, client: Any, request: GenerationRequest) -> Generation:
        raise NotImplementedError

    async def _guarded(self, request: GenerationRequest) -> Generation:
        client = self._client_here()
        failure: CallFailed | None = None
        try:
            return await self._generate_one(client, request)
        except Exception as exc:
            import importlib

            sdk = importlib.import_module(self.sdk_name)
            failure = translate(exc, sdk, key_env=self.key_env, secrets=self._secrets(),
                                where=self.where())
            if failure is None:
                raise
        # Raised outside the handler so that the SDK's exception (which may quote the key
        # or the request) is not chained to ours.
        raise failure

    def where(self) -> str:
        """The API root without credentials, for messages and logs."""
        if self._base_url is None:
            return f"https://{self.default_host}" if self.default_host else "the server"
        parts = urlsplit(self._base_url)
        return f"{parts.scheme}://{host_of(self._base_url)}{parts.path}"

    def _secrets(self) -> list[str]:
        key = self.options.api_key
        secrets = [key.get_secret_value() if key is not None
                   else os.environ.get(self.key_env, "")]
        if self._base_url is not None:  # a password inside the URL, rare but possible
            secrets.append(urlsplit(self._base_url).password or "")
        return secrets

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One API call per request, all in flight together: the caller (the client) bounds
        how many it sends at once."""
        if len(requests) <= 1:  # the client's usual batch: no task of its own to wait for
            return [await self._guarded(r) for r in requests]
        tasks = [asyncio.ensure_future(self._guarded(r)) for r in requests]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:  # after a failure, do not pay for answers no one will read
                task.cancel()

    async def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[Likelihood]:
        """Not offered by hosted chat APIs."""
        raise NotImplementedError(f"The {self.kind!r} backend cannot score likelihoods.")

    async def release_connections(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            # A client opened under another (finished) event loop cannot close cleanly.
            with contextlib.suppress(RuntimeError):
                await client.close()
