"""Two small real runs for the viewer's tests: a perfect in-context editor, and a model
whose every answer is markup and right-to-left text (untrusted text to show as text)."""

from __future__ import annotations

from pathlib import Path

from mike_sdk.cli.main import main

#: The answer of every row of the second run.
HOSTILE = '<script>alert(1)</script> שלום مرحبا'


def make_runs(data_dir: Path, root: Path) -> tuple[Path, Path]:
    """``(editor, hostile)`` run folders on the mock backend (Hindi and Arabic, 3 items)."""
    common = ["--backend", "mock", "--data-dir", str(data_dir), "--tasks", "counterfact,zsre",
              "--languages", "hi,ar", "--limit", "3", "--cache-dir", str(root / "cache"),
              "--no-progress", "--language-id", "script"]
    editor, hostile = root / "editor", root / "hostile"
    assert main(["eval", *common, "--run-dir", str(editor),
                 "--backend-option", "answer=edit"]) == 0
    assert main(["eval", *common, "--run-dir", str(hostile), "--backend-option", "answer=fixed",
                 "--backend-option", f"text={HOSTILE}", "--backend-option", "model=hostile"]) == 0
    return editor, hostile
