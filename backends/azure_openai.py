"""OpenAI models deployed on Azure OpenAI, through the official SDK's Azure client.

A request names a *deployment*, not a model: pass the model (it picks the profile and
the price) and the deployment that serves it (default: a deployment named like the
model). The endpoint comes from ``endpoint=`` or ``AZURE_OPENAI_ENDPOINT``,
the API version from ``api_version=`` or ``OPENAI_API_VERSION``, the key from
``api_key=`` or ``AZURE_OPENAI_API_KEY``. Requests are built exactly as for OpenAI.

>>> backend = AzureOpenAIBackend("gpt-5-mini", deployment="my-gpt5-mini",
...                              endpoint="https://res.openai.azure.com")
>>> backend.identity.model, backend.identity.revision, backend.profile.name
('gpt-5-mini@res.openai.azure.com', 'deployment=my-gpt5-mini', 'openai/gpt-5')
"""

from __future__ import annotations

import os
from typing import Any

from mike_sdk.backend import BACKENDS, Identity
from mike_sdk.errors import ConfigError

from .openai import OpenAIBackend
from .remote import host_of, http_client

__all__ = ["DEFAULT_API_VERSION", "AzureOpenAIBackend"]

#: Azure's API version when neither ``api_version=`` nor ``OPENAI_API_VERSION`` says:
#: the first that takes ``reasoning_effort`` and ``max_completion_tokens``.
DEFAULT_API_VERSION = "2025-04-01-preview"


@BACKENDS.register("azure-openai")
class AzureOpenAIBackend(OpenAIBackend):
    """An Azure OpenAI deployment (endpoint, API version, deployment name)."""

    kind = "azure-openai"
    key_env = "AZURE_OPENAI_API_KEY"
    base_url_env = "AZURE_OPENAI_ENDPOINT"
    fleets = False
    default_host = ""

    def __init__(self, model: str, *, deployment: str | None = None,
                 endpoint: str | None = None, api_version: str | None = None,
                 **options: Any) -> None:
        self.deployment = deployment or model
        self.model_name = model
        self.api_version = (api_version or os.environ.get("OPENAI_API_VERSION")
                            or DEFAULT_API_VERSION)
        super().__init__(self.deployment, base_url=endpoint, **options)

    def profile_model(self) -> str:
        """The model behind the deployment."""
        return self.model_name

    @property
    def identity(self) -> Identity:
        """The model at its Azure resource, the deployment as the revision."""
        host = host_of(self._base_url) if self._base_url else "azure"
        return Identity(kind=self.kind, model=f"{self.model_name}@{host}",
                        revision=f"deployment={self.deployment}",
                        settings=self.settings.tag())

    def _new_client(self, key: str) -> Any:
        import openai

        if self._base_url is None:
            raise ConfigError("Azure OpenAI needs its endpoint: pass endpoint= (or "
                              "--backend-option endpoint=https://RESOURCE.openai.azure.com) "
                              "or set AZURE_OPENAI_ENDPOINT.")
        opts = self.openai_options
        # The SDK routes by the body's "model" (the deployment) and adds ?api-version=.
        return openai.AsyncAzureOpenAI(azure_endpoint=self._base_url,
                                       api_version=self.api_version, api_key=key,
                                       timeout=opts.timeout, max_retries=0,
                                       http_client=http_client(openai, opts))
