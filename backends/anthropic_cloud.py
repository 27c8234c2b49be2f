"""Claude on Amazon Bedrock and on Google Vertex AI, through the anthropic SDK's clients.

The request body is the Messages API's (built from the same model profile); the SDK's
cloud clients move the model into the URL and sign the call with the cloud's own
credentials, found the usual way (Bedrock: ``aws_*=`` options, else the AWS credential
chain: environment, ``~/.aws``, instance role; Vertex: ``access_token=``, else Google's
application-default credentials). Where the profile pins the older API version (so that
``temperature`` is accepted), the body names the cloud's own older version; otherwise
the SDK's default (``2026-10-21``) goes out. Both need the ``cloud`` extra
(``pip install 'mike-sdk[cloud]'``: the anthropic SDK's ``bedrock`` and ``vertex`` extras).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import SecretStr

from mike_sdk.backend import BACKENDS, GenerationRequest
from mike_sdk.calls.failures import AuthFailed, CallFailed, redact
from mike_sdk.errors import ConfigError, one_line

from .anthropic import AnthropicBackend
from .remote import http_client

__all__ = ["BedrockBackend", "VertexBackend"]


class _CloudClaude(AnthropicBackend):
    """What the two cloud clients share: no Anthropic key, the cloud's API version."""

    #: ``anthropic_version`` of the body where the profile pins the older API version.
    legacy_version = ""
    needs_extra = "cloud"
    default_host = ""

    def _key(self) -> str:
        return ""  # the cloud's credentials, found by its SDK client

    def _client_options(self) -> dict[str, Any]:
        raise NotImplementedError

    def _sdk_client(self) -> Any:
        raise NotImplementedError

    def _new_client(self, key: str) -> Any:
        import anthropic

        options = self._client_options()
        try:
            return self._sdk_client()(**options, base_url=self._base_url,
                                      timeout=self.options.timeout, max_retries=0,
                                      http_client=http_client(anthropic, self.options))
        except Exception as exc:  # the SDK found no region, project or credentials
            raise ConfigError(f"The {self.kind!r} backend could not start: "
                              f"{one_line(exc)}") from None

    def payload(self, request: GenerationRequest) -> tuple[dict[str, Any], str]:
        body, started = super().payload(request)
        if self.settings.api_version is not None:
            body["anthropic_version"] = self.legacy_version
        return body, started


@BACKENDS.register("anthropic-bedrock")
class BedrockBackend(_CloudClaude):
    """Claude on Amazon Bedrock (model ids such as ``us.anthropic.claude-sonnet-4-6``)."""

    kind = "anthropic-bedrock"
    key_env = "AWS_ACCESS_KEY_ID"
    base_url_env = "ANTHROPIC_BEDROCK_BASE_URL"
    legacy_version = "bedrock-2023-05-31"
    needs = ("anthropic", "boto3", "botocore")

    def __init__(self, model: str, *, aws_region: str | None = None,
                 aws_profile: str | None = None, aws_access_key: str | None = None,
                 aws_secret_key: str | None = None, aws_session_token: str | None = None,
                 **options: Any) -> None:
        super().__init__(model, **options)
        self.aws_region = aws_region or os.environ.get("AWS_REGION")
        self.aws_profile = aws_profile
        self.aws_access_key = aws_access_key
        self._aws_secret = SecretStr(aws_secret_key or "")
        self._aws_token = SecretStr(aws_session_token or "")

    def _sdk_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropicBedrock

    def _client_options(self) -> dict[str, Any]:
        if not self.aws_access_key:
            self._check_credential_chain()
        return {"aws_region": self.aws_region, "aws_profile": self.aws_profile,
                "aws_access_key": self.aws_access_key,
                "aws_secret_key": self._aws_secret.get_secret_value() or None,
                "aws_session_token": self._aws_token.get_secret_value() or None}

    def _check_credential_chain(self) -> None:
        """Refuse to start without AWS credentials: the SDK would fail every request
        with a bare RuntimeError."""
        import boto3  # type: ignore[import-untyped]
        import botocore.exceptions  # type: ignore[import-untyped]

        try:
            found = boto3.Session(profile_name=self.aws_profile).get_credentials()
        except botocore.exceptions.BotoCoreError as exc:  # an unknown profile, a bad file
            raise ConfigError(f"Bedrock's AWS credentials could not be read: "
                              f"{one_line(exc)}") from None
        if found is None:
            raise ConfigError("Claude on Bedrock found no AWS credentials: pass "
                              "aws_access_key=/aws_secret_key= or aws_profile=, or set "
                              "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")

    def _secrets(self) -> list[str]:
        return [*super()._secrets(), self._aws_secret.get_secret_value(),
                self._aws_token.get_secret_value()]


@BACKENDS.register("anthropic-vertex")
class VertexBackend(_CloudClaude):
    """Claude on Google Vertex AI (model ids such as ``claude-sonnet-4-6``)."""

    kind = "anthropic-vertex"
    key_env = "GOOGLE_APPLICATION_CREDENTIALS"
    base_url_env = "ANTHROPIC_VERTEX_BASE_URL"
    legacy_version = "vertex-2023-10-16"
    needs = ("anthropic", "google.auth")

    def __init__(self, model: str, *, region: str | None = None,
                 project_id: str | None = None, access_token: str | None = None,
                 **options: Any) -> None:
        super().__init__(model, **options)
        self.region = region or os.environ.get("CLOUD_ML_REGION")
        self.project_id = project_id or os.environ.get("ANTHROPIC_VERTEX_PROJECT_ID")
        self._token = SecretStr(access_token or "")

    def _sdk_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropicVertex

    def _client_options(self) -> dict[str, Any]:
        if not self.region:
            raise ConfigError("Claude on Vertex AI needs a region: pass region= (e.g. "
                              "us-east5) or set CLOUD_ML_REGION.")
        # The SDK builds the URL before it loads credentials, so a project that only the
        # credentials know fails every request: ask for it up front.
        if not self.project_id:
            raise ConfigError("Claude on Vertex AI needs a Google Cloud project: pass "
                              "project_id= or set ANTHROPIC_VERTEX_PROJECT_ID.")
        return {"region": self.region, "project_id": self.project_id,
                "access_token": self._token.get_secret_value() or None}

    def _secrets(self) -> list[str]:
        return [*super()._secrets(), self._token.get_secret_value()]

    def _credentials_failure(self, exc: Exception) -> CallFailed | None:
        import google.auth.exceptions

        if not isinstance(exc, google.auth.exceptions.GoogleAuthError):
            return None
        return AuthFailed(redact(f"No usable Google credentials for Vertex AI "
                                 f"({one_line(exc)}): pass access_token=, point "
                                 "GOOGLE_APPLICATION_CREDENTIALS at a key file, or run "
                                 "`gcloud auth application-default login`.", self._secrets()))
