"""Claude on Bedrock and Vertex: construction, credentials and errors (no cloud needed).

Their requests and answers are checked against the strict stand-in server in
``test_strict_families.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mike_sdk.backend import GenerationRequest
from mike_sdk.backends.anthropic_cloud import BedrockBackend, VertexBackend
from mike_sdk.calls.failures import AuthFailed, CallFailed
from mike_sdk.errors import ConfigError


def test_secrets_stay_out_of_repr_and_identity() -> None:
    bedrock = BedrockBackend("us.anthropic.claude-sonnet-4-6", aws_region="us-east-1",
                             aws_access_key="test-access-key-id", aws_secret_key="aws-SECRET-1",
                             aws_session_token="token-SECRET-2")
    vertex = VertexBackend("claude-haiku-4-5@20251001", region="us-east5", project_id="p",
                           access_token="vertex-token-SECRET-3")
    for backend in (bedrock, vertex):
        shown = repr(backend) + backend.identity.model_dump_json()
        assert "SECRET" not in shown
    assert "aws-SECRET-1" in bedrock._secrets() and "vertex-token-SECRET-3" in vertex._secrets()
    assert bedrock.profile.name == "anthropic/claude-4.6"
    assert vertex.profile.name == "anthropic/claude-4.5-and-earlier"


def test_the_cloud_api_version_replaces_the_pinned_one() -> None:
    request = GenerationRequest(prompt="q")
    older = BedrockBackend("anthropic.claude-sonnet-4-6", aws_region="us-east-1")
    assert older.payload(request)[0]["anthropic_version"] == "bedrock-2023-05-31"
    newest = VertexBackend("claude-opus-4-7", region="us-east5", project_id="p")
    assert "anthropic_version" not in newest.payload(request)[0]  # the SDK's 2026-10-21


def test_vertex_without_a_region_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUD_ML_REGION", raising=False)
    backend = VertexBackend("claude-sonnet-4-6", project_id="p", access_token="t")

    async def go() -> None:
        await backend.generate([GenerationRequest(prompt="q")])

    with pytest.raises((ConfigError, CallFailed), match="CLOUD_ML_REGION"):
        asyncio.run(go())


def _one_request(backend: VertexBackend | BedrockBackend) -> None:
    asyncio.run(backend.generate([GenerationRequest(prompt="q")]))


def test_vertex_without_a_project_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK itself would fail each request with a RuntimeError (a traceback to the user).
    monkeypatch.delenv("ANTHROPIC_VERTEX_PROJECT_ID", raising=False)
    backend = VertexBackend("claude-sonnet-4-6", region="us-east5", access_token="t")
    with pytest.raises(ConfigError, match="ANTHROPIC_VERTEX_PROJECT_ID") as caught:
        _one_request(backend)
    assert "ConfigError" not in str(caught.value)


def test_missing_cloud_credentials_stop_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    # Google's and AWS's own libraries raise their exceptions at the first request, outside
    # the anthropic SDK's error classes: they must become the run-stopping AuthFailed.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    vertex = VertexBackend("claude-sonnet-4-6", region="us-east5", project_id="p")
    with pytest.raises(AuthFailed, match="gcloud auth application-default login"):
        _one_request(vertex)

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role lookup
    bedrock = BedrockBackend("us.anthropic.claude-sonnet-4-6", aws_region="us-east-1")
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID"):
        _one_request(bedrock)
    with pytest.raises(ConfigError, match="nobody"):
        _one_request(BedrockBackend("us.anthropic.claude-sonnet-4-6", aws_region="us-east-1",
                                    aws_profile="nobody"))
