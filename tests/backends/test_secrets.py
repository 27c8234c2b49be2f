"""API keys never leave the process: not in the cache, run files, logs, errors or reprs."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rows import results_text
from servers import KATAN_ANTHROPIC_KEY, KATAN_OPENAI_KEY, Katan, fake_key

from mike_sdk.backend import Backend
from mike_sdk.backends.anthropic import AnthropicBackend
from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator

CONFIG = EvalConfig(tasks=("zsre",), languages=("de",), strategy="zero-shot", limit=1,
                    metrics=("reliability",), language_id="script")
WRONG_KEY = fake_key("secrets_wrong_key")
# The test servers run in this process: their own logs quote refused keys, ours must not.
SERVER_LOGGERS = ("llm_katan", "uvicorn", "fastapi", "starlette")
CLIENT_LOGGERS = ("openai", "anthropic", "httpx", "httpx2", "httpcore", "httpcore2",
                  "mike_sdk")


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in CLIENT_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def files_under(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file())


def assert_nowhere(secret: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                   backend: Backend, *texts: str) -> None:
    raw = secret.encode()
    for path in files_under(tmp_path):  # cache (diskcache's sqlite and value files) and run
        data = path.read_bytes()
        if path.suffix == ".gz":  # the run's stored prompts
            data = gzip.decompress(data)
        assert raw not in data, f"key found in {path}"
    ours = [r for r in caplog.records if not r.name.startswith(SERVER_LOGGERS)]
    assert ours, "nothing was logged: the log check would prove nothing"
    for record in ours:
        assert secret not in record.getMessage(), f"key logged by {record.name}"
        assert secret not in str(record.exc_info or "")
    for text in (repr(backend), repr(backend.identity), str(backend.identity.model_dump()),
                 *texts):
        assert secret not in text


def run(backend: Backend, benchmark: Benchmark, tmp_path: Path) -> dict[str, object]:
    with ResponseCache(tmp_path / "cache") as cache:
        return Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(
            CONFIG, tmp_path / "run")


def test_openai_key_from_env_stays_secret(katan: Katan, benchmark: Benchmark, tmp_path: Path,
                                          debug_logs: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KATAN_OPENAI_KEY)
    backend = OpenAIBackend("echo", base_url=f"{katan.url}/v1")
    summary = run(backend, benchmark, tmp_path)
    assert summary.totals.rows == 1 and summary.totals.errors == 0
    assert (tmp_path / "run" / "manifest.json").is_file()
    assert (tmp_path / "run" / "summary.json").is_file()
    assert "User: New Fact:" in results_text(tmp_path / "run")
    assert_nowhere(KATAN_OPENAI_KEY, tmp_path, debug_logs, backend, str(summary))


def test_anthropic_key_stays_secret(katan: Katan, benchmark: Benchmark, tmp_path: Path,
                                    debug_logs: pytest.LogCaptureFixture) -> None:
    backend = AnthropicBackend("echo", base_url=katan.url, api_key=KATAN_ANTHROPIC_KEY)
    summary = run(backend, benchmark, tmp_path)
    assert summary.totals.rows == 1 and summary.totals.errors == 0
    assert_nowhere(KATAN_ANTHROPIC_KEY, tmp_path, debug_logs, backend, str(summary))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_refused_key_stays_secret(kind: str, katan: Katan, benchmark: Benchmark,
                                  tmp_path: Path, debug_logs: pytest.LogCaptureFixture) -> None:
    # llm-katan's 401 message quotes the key it was sent, as some real servers do.
    backend: OpenAIBackend | AnthropicBackend = (
        OpenAIBackend("echo", base_url=f"{katan.url}/v1", api_key=WRONG_KEY) if kind == "openai"
        else AnthropicBackend("echo", base_url=katan.url, api_key=WRONG_KEY))
    with pytest.raises(Exception) as caught:
        run(backend, benchmark, tmp_path)
    assert "Authentication failed (401)" in str(caught.value)
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    summary = tmp_path / "run" / "summary.json"
    texts = [f"{e!s} {e!r} {e.args!r}" for e in chain]
    assert_nowhere(WRONG_KEY, tmp_path, debug_logs, backend, caught.exconly(), *texts)
    if summary.is_file():
        assert "401" in summary.read_text()


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_credentials_in_a_base_url_are_refused_without_quoting_them(
        transport: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mike_sdk.errors import ConfigError

    url = "http://user:PASSWORD-SECRET@127.0.0.1:9/v1"
    with pytest.raises(ConfigError, match=r"must not hold credentials") as caught:
        OpenAIBackend("m", base_url=url, api_key="k", transport=transport)  # type: ignore[arg-type]
    assert "PASSWORD-SECRET" not in str(caught.value) and "127.0.0.1:9" in str(caught.value)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(ConfigError, match=r"\$OPENAI_BASE_URL must not hold") as caught:
        OpenAIBackend("m", api_key="k", transport=transport)  # type: ignore[arg-type]
    assert "PASSWORD-SECRET" not in str(caught.value)
    fleet = tmp_path / "fleet.json"
    fleet.write_text(f'{{"name": "f", "servers": [{{"url": "{url}"}}]}}')
    with pytest.raises(ConfigError, match="must not hold credentials") as caught:
        OpenAIBackend("m", fleet=str(fleet), api_key="k")
    assert "PASSWORD-SECRET" not in str(caught.value)


def test_an_authorization_header_echoed_by_the_server_is_redacted(
        benchmark: Benchmark, tmp_path: Path, debug_logs: pytest.LogCaptureFixture) -> None:
    from billing_server import MODEL, BillingServer

    key = fake_key("echoed_key")
    server = BillingServer()
    server.knobs.refuse, server.knobs.echo_auth = 1.0, True  # every refusal quotes the header
    try:
        backend = OpenAIBackend(MODEL, base_url=f"{server.url}/v1", api_key=key)
        with ResponseCache(tmp_path / "cache") as cache:
            summary = Evaluator(backend, benchmark=benchmark, cache=cache,
                                progress=False).run(CONFIG, tmp_path / "run")
    finally:
        server.close()
    assert summary.totals.errors == 1 and server.statuses["400"] == 1
    rows = results_text(tmp_path / "run")
    assert "Content filter" in rows and "Bearer ***" in rows
    for path in files_under(tmp_path):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        assert key.encode() not in data, path
    assert key not in debug_logs.text
