"""Three small real runs for the viewer's tests: a perfect in-context editor, a model
whose every answer is markup and right-to-left text (untrusted text to show as text),
and the editor behind a server that refuses some requests (their rows score 0)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rows import results_text, write_results

from mike_sdk.cli.main import main

#: The three runs' folders.
Runs = tuple[Path, Path, Path]
#: The answer of every row of the second run.
HOSTILE = '<script>alert(1)</script> שלום مرحبا'


def make_runs(data_dir: Path, root: Path) -> Runs:
    """``(editor, hostile, flaky)`` run folders on the mock backend (Hindi and Arabic,
    3 items)."""
    common = ["--backend", "mock", "--data-dir", str(data_dir), "--tasks", "counterfact,zsre",
              "--languages", "hi,ar", "--limit", "3", "--cache-dir", str(root / "cache"),
              "--no-progress", "--language-id", "script"]
    editor, hostile, flaky = root / "editor", root / "hostile", root / "flaky"
    assert main(["eval", *common, "--run-dir", str(editor),
                 "--backend-option", "answer=edit"]) == 0
    assert main(["eval", *common, "--run-dir", str(hostile), "--backend-option", "answer=fixed",
                 "--backend-option", f"text={HOSTILE}", "--backend-option", "model=hostile"]) == 0
    main(["eval", *common, "--run-dir", str(flaky), "--backend-option", "answer=edit",
          "--backend-option", "model=flaky", "--backend-option", "failure_rate=0.5",
          "--backend-option", "failure_kinds=bad_request"])  # exits 1: rows with errors
    return editor, hostile, flaky


def damaged_copy(run: Path, to: Path) -> Path:
    """A copy of ``run`` whose second line lost its ``cache_key`` (a damaged line)."""
    shutil.copytree(run, to, ignore=shutil.ignore_patterns(".lock"))
    lines = results_text(to).splitlines()
    lines[1] = json.dumps({k: v for k, v in json.loads(lines[1]).items() if k != "cache_key"})
    write_results(to, "\n".join(lines) + "\n")
    return to
