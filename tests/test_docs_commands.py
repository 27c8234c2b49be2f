"""Every ``mike`` command shown in a code block of the README and docs/ runs, so that the
docs cannot drift from the code: an unknown flag, a renamed subcommand or a refused
value fails here.

Each command runs as a user would type it (the installed ``mike``, in a fresh folder),
made small and local by the same few rewrites for all: the ``hf`` backend (a local
model) becomes the ``mock`` one, ``--limit`` becomes 1, the data folder is the shared
copy, run and cache folders go to a temporary folder, and the docs' placeholders
(``RUN_DIR``, ``runs/<folder>``, ``DIR``, ``my_strategies.py``, a trailing ``...``)
become a real run folder, a real output folder and ``examples/custom_strategy.py``
(the strategy those docs show). What cannot run here is listed in :data:`SKIPS`, each
with its reason; a command matching neither fails, naming the file it comes from.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

#: (pattern in the command, why it cannot run here). First match wins.
SKIPS: list[tuple[str, str]] = [
    (r"--device cuda", "needs a GPU"),
    (r"\{1\.\.8\}|\$\{SLURM", "needs the 8 shard folders of the SLURM example (GPU jobs)"),
    (r"runs/llama8b\b", "reads the folders of the SLURM example (GPU jobs)"),
    (r"--backend (openai|anthropic|azure-openai|anthropic-bedrock|anthropic-vertex)\b",
     "needs an API key or a running model server (the wires are tested in tests/backends/)"),
    (r"--include my_package\.", "imports a plugin package of the reader's own"),
    (r"\bmike (view|serve)\b", "starts a local web server that runs until stopped (tested in "
     "tests/view/ and tests/serve/)"),
]

#: The docs' placeholders and what stands in for them (the run folder is made first).
PLACEHOLDERS = {"my_strategies.py": str(REPO / "examples" / "custom_strategy.py")}
RUN_PLACEHOLDERS = ("RUN_DIR", "runs/<folder>")
#: Flags whose value is replaced by a local one (dropped, then added back below).
LOCAL_FLAGS = ("--limit", "--data-dir", "--run-dir", "--cache-dir", "--model", "--device")


def doc_commands() -> list[tuple[str, str]]:
    """``(file:line, command)`` for each ``mike`` command of a fenced code block."""
    found = []
    for doc in DOCS:
        lines = doc.read_text(encoding="utf-8").splitlines()
        in_block, pending, start = False, "", 0
        for number, line in enumerate(lines, 1):
            if line.strip().startswith("```"):
                in_block, pending = not in_block, ""
                continue
            if not in_block:
                continue
            text = line.strip()
            if pending:
                text, start = f"{pending} {text}", start
            else:
                start = number
            if text.endswith("\\"):
                pending = text[:-1].strip()
                continue
            pending = ""
            for part in text.split("&&"):
                part = part.strip()
                if part.startswith("mike ") and not part.startswith("mike: "):
                    found.append((f"{doc.relative_to(REPO)}:{start}", part))
    return found


def local_argv(command: str, run_dir: Path, tmp: Path) -> list[str]:
    """The command, made small and local (see the module docstring)."""
    words = shlex.split(re.sub(r"\[([^\]]*)\]", "", command), comments=True)
    words = [PLACEHOLDERS.get(w, w) for w in words if w != "..."]
    words = [str(run_dir) if w in RUN_PLACEHOLDERS else w for w in words]
    out: list[str] = []
    skip_value = False
    for i, word in enumerate(words):
        if skip_value:
            skip_value = False
            continue
        if word in LOCAL_FLAGS:
            skip_value = True
            continue
        if word == "--out" and words[i + 1] == "DIR":
            out += ["--out", str(tmp / "out")]
            skip_value = True
            continue
        out.append(word)
    command_name = next(w for w in out[1:] if not w.startswith("-") and not w.endswith(".py"))
    if command_name in ("eval", "reproduce"):
        if "--backend" not in out:
            out += ["--backend", "hf"]
        out[out.index("--backend") + 1] = "mock"  # a local model stands in as the mock
        out += ["--limit", "1", "--data-dir", str(SHARED_DATA), "--cache-dir",
                str(tmp / "cache"), "--no-progress"]
        if command_name == "eval":
            out += ["--run-dir", str(tmp / "run"), "--language-id", "script"]
    if command_name == "report" and "--out" in out:
        out += ["--resamples", "100"]
    return out


def skip_reason(command: str) -> str | None:
    return next((why for pattern, why in SKIPS if re.search(pattern, command)), None)


COMMANDS = doc_commands()


def test_the_docs_show_commands() -> None:
    """The extraction finds the README's first command and several of each doc."""
    assert COMMANDS[0][1].startswith("mike eval --data-dir ../shared/bmike53")
    assert len(COMMANDS) >= 20
    assert len({where.split(":")[0] for where, _ in COMMANDS}) >= 6


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A small finished run for the commands that read one (``mike report RUN_DIR``)."""
    folder = tmp_path_factory.mktemp("docs") / "run"
    done = subprocess.run([str(Path(sys.executable).with_name("mike")), "eval", "--backend",
                           "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
                           "--languages", "de,zh", "--limit", "2", "--run-dir", str(folder),
                           "--cache-dir", str(folder.parent / "cache"), "--no-progress",
                           "--language-id", "script"], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_runs(where: str, command: str, run_dir: Path,
                                   tmp_path: Path) -> None:
    reason = skip_reason(command)
    if reason is not None:
        pytest.skip(f"{where}: {reason}")
    argv = local_argv(command, run_dir, tmp_path)
    argv[0] = str(Path(sys.executable).with_name("mike"))
    env = {**os.environ, "MIKE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, (f"{where}: `{command}` (run as {shlex.join(argv[1:])}) "
                                  f"exited {done.returncode}: {done.stderr[-2000:]}")
