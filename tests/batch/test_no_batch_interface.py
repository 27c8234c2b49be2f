"""``--batch`` against a server without a batch interface (llm-katan's OpenAI and
Anthropic wires: no /files, no /batches) says so in one line, not "check the model"."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import KATAN_ANTHROPIC_KEY, KATAN_OPENAI_KEY, Katan

from mike_sdk.cli.main import main
from mike_sdk.runfolder.rundir import read_summary


@pytest.mark.parametrize(("backend", "path", "key", "call"), [
    ("openai", "/v1", KATAN_OPENAI_KEY, "upload"),
    ("anthropic", "", KATAN_ANTHROPIC_KEY, "create"),
])
def test_batch_against_a_server_without_one_says_so(
        backend: str, path: str, key: str, call: str, katan: Katan, data_dir: Path,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{katan.url}{path}"
    code = main(["eval", "--backend", backend, "--model", "echo", "--base-url", url,
                 "--backend-option", f"api_key={key}", "--batch", "--data-dir",
                 str(data_dir), "--tasks", "zsre", "--languages", "de", "--limit", "1",
                 "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress", "--language-id", "script"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == (f"mike: error: The server at {url} has no batch interface (its {call} "
                       "call was answered 404 Not Found): run without --batch.")
    assert key not in "\n".join(err)


def test_the_same_run_without_batch_then_answers_everything(
        katan: Katan, data_dir: Path, tmp_path: Path) -> None:
    # What the refused --batch run recorded (its intent, its leases) must not hold back
    # the live run the message tells the user to make.
    common = ["eval", "--backend", "openai", "--model", "echo", "--base-url",
              f"{katan.url}/v1", "--backend-option", f"api_key={KATAN_OPENAI_KEY}",
              "--data-dir", str(data_dir), "--tasks", "zsre", "--languages", "de",
              "--limit", "1", "--run-dir", str(tmp_path / "run"), "--cache-dir",
              str(tmp_path / "cache"), "--no-progress", "--language-id", "script"]
    assert main([*common, "--batch"]) == 2
    assert main(common) == 0
    summary = read_summary(tmp_path / "run")
    # One zsRE item in German: its four questions, all answered live.
    assert summary.totals.rows == 4 and summary.totals.errors == 0
    assert summary.totals.backend_calls_this_session == 4
