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
import copy
import functools
import importlib.util
import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from types import ModuleType
from typing import Any, Literal, TypeVar
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
from mike_sdk.calls.failures import AuthFailed, CallFailed, redact, translate, without_credentials
from mike_sdk.calls.fleet import (
    Fleet,
    FleetFile,
    FleetServer,
    Member,
    credentials_in,
    hide_credentials,
    read_fleet,
    require_scheme,
)
from mike_sdk.errors import ConfigError, invalid_options
from mike_sdk.extras import require_extra
from mike_sdk.providers.profiles import ModelProfile, ProfileTable, Provider
from mike_sdk.providers.settings import DEFAULT_REASONING_BUDGET, RequestSettings, settings_for

from .bodies import not_json
from .wire.clients import aiohttp_client, httpx_client

__all__ = ["RemoteBackend", "RemoteOptions", "http_client", "redact", "resolve_key",
           "translate"]

T = TypeVar("T")

log = logging.getLogger("mike_sdk.backends.remote")


class RemoteOptions(BaseModel):
    """Constructor options shared by the hosted-API backends, validated."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(min_length=1)
    """The provider's model name."""
    base_url: str | tuple[str, ...] | None = None
    """API root; ``None`` for the provider's default (or its ``*_BASE_URL`` variable).
    Several roots make a fleet of servers of the same model (OpenAI-compatible servers
    only; see :mod:`mike_sdk.calls.fleet`)."""
    fleet: str | None = None
    """A fleet file (JSON or TOML: ``name`` and ``[[servers]]`` with ``url`` and
    ``concurrency``), instead of several base URLs."""
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
    def _has_scheme(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        for url in (value,) if isinstance(value, str) else value or ():
            require_scheme(url)
        if isinstance(value, tuple) and len(value) == 1:
            return value[0]
        return value or None

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
    ``auto`` finds aiohttp), else its default httpx one; either reports each request body
    it writes to the socket (:mod:`backends.wire.clients`)."""
    wanted = options.transport
    if wanted == "httpx" or (wanted == "auto" and importlib.util.find_spec("aiohttp") is None):
        return httpx_client(sdk, options.timeout)
    try:
        return aiohttp_client(sdk, options.timeout)
    except (AttributeError, ImportError, RuntimeError):
        if wanted == "auto":
            return httpx_client(sdk, options.timeout)
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


def host_of(base_url: str) -> str:
    """``host[:port]`` of a URL, never its user or password part."""
    parts = urlsplit(base_url if "//" in base_url else f"//{base_url}")
    host = parts.hostname or base_url
    return f"{host}:{parts.port}" if parts.port else host


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

    #: Whether several base URLs (a fleet of servers of one model) make sense here.
    fleets = False
    #: :func:`http_client` reports each body on the wire: a subclass whose
    #: :meth:`_new_client` builds its own must set this to False.
    reports_sending = True

    def __init__(self, options: RemoteOptions) -> None:
        # Before anything else: without its SDK, every request would fail deep in the run.
        require_extra(f"The {self.kind!r} backend", self.needs, self.needs_extra)
        self.options = options
        urls = options.base_url
        self._fleet_file = self._read_fleet(urls)
        self._base_url = (None if self._fleet_file is not None
                          else urls if isinstance(urls, str)
                          else os.environ.get(self.base_url_env) or None)
        if self._base_url is not None and credentials_in(self._base_url):
            raise ConfigError(f"${self.base_url_env} must not hold credentials "
                              f"({without_credentials(self._base_url)} with a user:password@ "
                              f"part): give the key with {self.key_env} or api_key=..., "
                              "never in the URL.")
        self._fleet: Fleet[RemoteBackend] | None = None
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
            error = invalid_options(f"the {cls.kind!r} backend", exc, [shown])
            raise ConfigError(hide_credentials(str(error))) from None

    def __repr__(self) -> str:
        # Never the key, nor a user:password part of the URL.
        shown = self.options.model_dump(exclude={"api_key"})
        if self._base_url is not None or self._fleet_file is not None:
            shown["base_url"] = self.where()
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def identity(self) -> Identity:
        """Kind and model; ``model@host[:port]`` when not the provider's own API."""
        model = self.options.model
        if self._fleet_file is not None:  # the fleet's name, never its URLs
            model = f"{model}@{self._fleet_file.name}"
        elif self._base_url is not None and host_of(self._base_url) != self.default_host:
            model = f"{model}@{host_of(self._base_url)}"
        return Identity(kind=self.kind, model=model, settings=self.settings.tag())

    def request_settings(self) -> RequestSettings:
        """The settings every request is built from (the model's profile plus options)."""
        return self.settings

    @property
    def abilities(self) -> Abilities:
        """Chat messages, one request per batch, ``max_concurrency`` in flight."""
        return Abilities(completion=False, chat=True, tokenizer=False, loglikelihood=False,
                         batch_size=1, max_concurrency=self.max_concurrency())

    def max_concurrency(self) -> int:
        """Requests in flight at once: the option, or the sum over a fleet's servers."""
        fleet = self.fleet
        return self.options.max_concurrency if fleet is None else fleet.capacity

    def _read_fleet(self, urls: str | tuple[str, ...] | None) -> FleetFile | None:
        """The fleet this backend sends to, from a fleet file or several base URLs; None
        for one server."""
        several = isinstance(urls, tuple)
        if self.options.fleet is None and not several:
            return None
        if not self.fleets:
            raise ConfigError(f"The {self.kind!r} backend talks to one API: several base "
                              "URLs (a fleet) are for OpenAI-compatible servers (--backend "
                              "openai).")
        if self.options.fleet is not None:
            if urls is not None:
                raise ConfigError("Give base URLs or a fleet file (fleet=...), not both.")
            return read_fleet(self.options.fleet)
        return FleetFile(servers=tuple(FleetServer(url=u) for u in urls or ()))

    @property
    def fleet(self) -> Fleet[RemoteBackend] | None:
        """The servers this backend routes to (None: one server)."""
        if self._fleet_file is not None and self._fleet is None:
            self._fleet = Fleet([
                Member(label=without_credentials(s.url),
                       capacity=s.concurrency or self.options.max_concurrency,
                       target=self._on(s.url)) for s in self._fleet_file.servers])
        return self._fleet

    def _on(self, url: str) -> RemoteBackend:
        """This backend, for one server of its fleet."""
        member = copy.copy(self)
        member._fleet_file, member._fleet = None, None
        member._base_url, member._client, member._loop = url, None, None
        return member

    def _key(self) -> str:
        return resolve_key(self.options.api_key, self.key_env)

    def _new_client(self, key: str) -> Any:
        raise NotImplementedError

    def _client_here(self) -> Any:
        """The SDK client, built on first use and again under a new event loop (its
        connection pool belongs to the loop that opened it)."""
        if self._fleet_file is not None:
            raise ConfigError("A fleet of servers has no batch API: run it live (without "
                              "--batch).")
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._new_client(self._key())
            self._loop = loop
        return self._client

    async def _generate_one(self, client: Any, request: GenerationRequest) -> Generation:
        raise NotImplementedError

    async def _guarded(self, request: GenerationRequest) -> Generation:
        return await self.on_server(lambda client: self._generate_one(client, request))

    async def on_server(self, call: Callable[[Any], Awaitable[T]]) -> T:
        """``await call(sdk_client)`` on this backend's server (a fleet's least-loaded
        one), with the SDK's failures translated."""
        fleet = self.fleet
        if fleet is not None:
            return await fleet.send(lambda member: member.on_server(call))
        client = self._client_here()
        failure: CallFailed | None = None
        try:
            return await call(client)
        except json.JSONDecodeError as exc:  # a 200 whose JSON body is cut or invalid
            failure = not_json(self.where(), f"{exc.msg} at character {exc.pos}")
        except Exception as exc:
            import importlib

            sdk = importlib.import_module(self.sdk_name)
            failure = (translate(exc, sdk, key_env=self.key_env, secrets=self._secrets(),
                                 where=self.where())
                       or self._credentials_failure(exc))
            if failure is None:
                raise
        # Raised outside the handler so that the SDK's exception (which may quote the key
        # or the request) is not chained to ours.
        raise failure

    def _credentials_failure(self, exc: Exception) -> CallFailed | None:
        """A failure of credentials found outside the SDK (a cloud's own auth library),
        or None: such clients raise their own exceptions at the first request."""
        return None

    def base_url(self) -> str | None:
        """The base URL without a user or password part (None: the provider's own API)."""
        return None if self._base_url is None else without_credentials(self._base_url)

    def where(self) -> str:
        """The API root without credentials, for messages and logs."""
        if self._fleet_file is not None:
            urls = ", ".join(without_credentials(s.url) for s in self._fleet_file.servers)
            return f"the fleet {self._fleet_file.name!r} ({urls})"
        if self._base_url is None:
            return f"https://{self.default_host}" if self.default_host else "the server"
        return without_credentials(self._base_url)

    def _secrets(self) -> list[str]:
        key = self.options.api_key
        secrets = [key.get_secret_value() if key is not None
                   else os.environ.get(self.key_env, "")]
        urls = ([s.url for s in self._fleet_file.servers] if self._fleet_file is not None
                else [self._base_url] if self._base_url is not None else [])
        # A password inside a URL, rare but possible.
        secrets += [urlsplit(url).password or "" for url in urls]
        return secrets

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One API call per request, all in flight together: the caller (the client) bounds
        how many it sends at once."""
        return await self._each([functools.partial(self._guarded, r) for r in requests])

    async def _each(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Every call at once, in order; after a failure, the others are cancelled (do
        not pay for answers no one will read)."""
        if len(calls) <= 1:  # the client's usual batch: no task of its own to wait for
            return [await call() for call in calls]
        tasks = [asyncio.ensure_future(call()) for call in calls]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()

    async def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[Likelihood]:
        """Not offered by hosted chat APIs."""
        raise NotImplementedError(f"The {self.kind!r} backend cannot score likelihoods.")

    async def release_connections(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        if self._fleet is not None:
            log.info("Fleet %s:\n%s", self.where(), self._fleet.summary())
            for member in self._fleet.members:
                await member.target.aclose()
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            # A client opened under another (finished) event loop cannot close cleanly.
            with contextlib.suppress(RuntimeError):
                await client.close()
