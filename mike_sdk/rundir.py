"""A run folder: ``manifest.json``, ``results.jsonl`` (appended as results arrive) and
``summary.json``. Re-opening a folder with the same configuration resumes it."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError

MANIFEST, RESULTS, SUMMARY, LOCK = "manifest.json", "results.jsonl", "summary.json", ".lock"


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def iter_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Complete rows of a ``results.jsonl`` (a torn last line is ignored)."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for line in fh:
            if line.endswith(b"\n"):
                yield json.loads(line)


class RunDir:
    """Exclusive access to one run folder while a run writes to it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: IO[str] | None = None
        self._results: IO[bytes] | None = None

    @property
    def results_path(self) -> Path:
        """The ``results.jsonl`` file."""
        return self.path / RESULTS

    def open(self, manifest: dict[str, Any], identity_keys: tuple[str, ...]) -> None:
        """Lock the folder, check or write the manifest, and get ready to append.

        ``identity_keys`` are the manifest entries that must match to resume.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = (self.path / LOCK).open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise ConfigError(f"Another process is writing to run folder {self.path}; wait for "
                              "it or choose another --run-dir.") from None
        manifest_path = self.path / MANIFEST
        if manifest_path.exists():
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
            for key in identity_keys:
                if old.get(key) != manifest.get(key):
                    self.close()
                    raise ConfigError(
                        f"Run folder {self.path} holds a different run ({key} differs: "
                        f"{old.get(key)!r} there, {manifest.get(key)!r} now). Choose another "
                        "--run-dir, or delete that folder to start over.")
            manifest = {**old, **manifest, "data_files": old.get("data_files", {})}
        write_json(manifest_path, manifest)
        self._truncate_torn_line()
        self._results = self.results_path.open("ab")

    def _truncate_torn_line(self) -> None:
        # A kill mid-write can leave a partial last line; drop it so appends stay valid.
        path = self.results_path
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            size = fh.seek(0, os.SEEK_END)
            step, pos = 65536, size
            while pos > 0:
                pos = max(0, pos - step)
                fh.seek(pos)
                newline = fh.read(size - pos).rfind(b"\n")
                if newline >= 0:
                    fh.truncate(pos + newline + 1)
                    return
            fh.truncate(0)

    def append(self, lines: list[bytes]) -> None:
        """Append serialized rows and flush them to the OS."""
        assert self._results is not None, "RunDir.open() first"
        self._results.write(b"".join(lines))
        self._results.flush()

    def update_manifest(self, **entries: Any) -> None:
        """Merge entries into ``manifest.json``."""
        path = self.path / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8"))
        for key, value in entries.items():
            if isinstance(value, dict) and isinstance(manifest.get(key), dict):
                manifest[key] = {**manifest[key], **value}
            else:
                manifest[key] = value
        write_json(path, manifest)

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json``."""
        write_json(self.path / SUMMARY, summary)

    def close(self) -> None:
        """Flush results and release the lock."""
        if self._results is not None:
            self._results.close()
            self._results = None
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
