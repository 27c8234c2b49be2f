"""A run folder: ``manifest.json``, ``results.jsonl.gz`` (appended as results arrive, a
gzip member per flush; ``results.jsonl`` in folders begun before format 3) and
``summary.json``, read and written through their models (:mod:`mike_sdk.runfolder.files`).
Re-opening a folder with the same configuration resumes it.

A file that does not validate (damaged, or not written by mike-sdk) or a manifest of
a newer :data:`~mike_sdk.runfolder.files.FORMAT` is refused with a
:class:`~mike_sdk.errors.ConfigError` that names the file, the line and the way out.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.files import (
    FORMAT,
    FROM_ID,
    MANIFEST,
    PLAIN_RESULTS,
    RESULTS,
    SUMMARY,
    Manifest,
    ResultRow,
    Summary,
)
from mike_sdk.runfolder.members import complete_lines, cut_torn_member, member

LOCK = ".lock"
_HOW = ("re-run into a new --run-dir (the response cache makes that cheap), or read "
        "the folder with the mike-sdk version that wrote it (manifest.json: versions)")

M = TypeVar("M", bound=BaseModel)


class _RowId(BaseModel):
    """Just the id of a row: what resuming and dry runs need."""

    id: str


def _problem(exc: ValidationError | ValueError) -> tuple[str, bool]:
    """The first error as one phrase (the rest are usually its consequences), and whether
    it is a missing field (a file of an older or other program, not a damaged one)."""
    if not isinstance(exc, ValidationError):
        return f"not JSON ({exc})", False
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "the value"
    if first["type"] == "json_invalid":
        return f"not JSON ({first['msg']})", False
    if first["type"] == "missing":
        return f"field {where!r} is missing", True
    return f"{where}: {first['msg']}", False


def _refuse(path: Path, exc: ValidationError | ValueError) -> ConfigError:
    problem, missing = _problem(exc)
    if missing:
        return ConfigError(f"{path}: {problem}. It was written by an older or other program: "
                           f"{_HOW}.")
    return ConfigError(f"{path}: {problem}. The file is damaged: restore it from a copy, "
                       f"or {_HOW}.")


def _read_model(path: Path, model: type[M], defaults: dict[str, Any] | None = None) -> M:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: is {path.parent} a run folder? `mike eval` "
                          "writes it (re-running the same command finishes a run).") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _refuse(path, exc) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object. The file is damaged: {_HOW}.")
    try:
        return model.model_validate({**(defaults or {}), **data})
    except ValidationError as exc:
        raise _refuse(path, exc) from None


def read_manifest(path: str | Path) -> Manifest:
    """A folder's ``manifest.json`` (``path``: the file or its folder).

    Raises:
        ConfigError: missing, damaged, or written by a newer mike-sdk (a newer format).
    """
    path = _file(path, MANIFEST)
    manifest = _read_model(path, Manifest, {"format": 0})
    if manifest.format > FORMAT:
        raise ConfigError(f"{path} has run-files format {manifest.format}; this mike-sdk reads "
                          f"up to {FORMAT}. Upgrade mike-sdk to read it (or re-run into a new "
                          "--run-dir).")
    return manifest


def read_summary(path: str | Path) -> Summary:
    """A folder's ``summary.json`` (``path``: the file or its folder).

    Raises:
        ConfigError: missing or damaged.
    """
    return _read_model(_file(path, SUMMARY), Summary)


def _file(path: str | Path, name: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        return path
    return results_file(path) if name == RESULTS else path / name


def results_file(folder: str | Path) -> Path:
    """The file that holds (or will hold) a run folder's rows: ``results.jsonl.gz``, or
    ``results.jsonl`` in a folder begun before format 3 (it keeps being appended to).

    Every reader and writer of rows finds the file here, whatever its name.

    Raises:
        ConfigError: the folder holds both (rows of two runs, or a copy made by hand).
    """
    folder = Path(folder)
    plain, packed = folder / PLAIN_RESULTS, folder / RESULTS
    if not plain.exists():
        return packed
    if packed.exists():
        raise ConfigError(f"Run folder {folder} holds both {PLAIN_RESULTS} and {RESULTS}: "
                          "one of them was copied in by hand. Move the one that is not this "
                          "run's away.")
    return plain


def _line_error(path: Path, number: int, exc: ValidationError | ValueError) -> ConfigError:
    problem, _ = _problem(exc)
    return ConfigError(
        f"{path}, line {number}: {problem}. The line is damaged or was not written by "
        "mike-sdk: delete that line (re-running the same `mike eval` command redoes its "
        f"item), or {_HOW}.")


def row_lines(path: str | Path) -> Iterator[bytes]:
    """The complete lines of a run folder's rows (``path`` as :func:`iter_result_rows`),
    unvalidated, in file order (a torn last line or member left out)."""
    for _, line in complete_lines(_file(path, RESULTS)):
        yield line


def validated_lines(path: str | Path, model: type[M]) -> Iterator[tuple[M, bytes]]:
    """Each complete line of a run folder's rows (``path`` as :func:`iter_result_rows`),
    validated as ``model`` (a row, or only the fields a reader needs), with its bytes.

    Raises:
        ConfigError: a line that does not validate (names file and line).
    """
    path = _file(path, RESULTS)
    validate = model.model_validate_json
    for number, line in complete_lines(path):
        try:
            yield validate(line), line
        except ValidationError as exc:
            raise _line_error(path, number, exc) from None


def iter_result_rows(path: str | Path) -> Iterator[ResultRow]:
    """The rows of a run folder (``path``: the folder, or its ``results.jsonl.gz`` or
    ``results.jsonl``), in file order.

    Rows of older versions get the defaults of the fields they lack.

    Raises:
        ConfigError: a complete line that is not a result row (names file and line).
    """
    for row, _ in validated_lines(path, ResultRow):
        yield row


def final_rows(path: str | Path) -> Iterator[ResultRow]:
    """One row per item: its first answered row, else (an item every attempt of which
    was refused) its first error row, yielded after the others. A re-run with
    ``--retry-errors`` appends new rows for refused items; nothing is ever rewritten."""
    for row, _ in final_lines(path):
        yield row


def final_lines(path: str | Path) -> Iterator[tuple[ResultRow, bytes]]:
    """:func:`final_rows` with each row's line (for copying rows without writing them
    again)."""
    answered: set[str] = set()
    refused: dict[str, tuple[ResultRow, bytes]] = {}
    for row, line in validated_lines(path, ResultRow):
        if row.error is not None:
            if row.id not in answered:
                refused.setdefault(row.id, (row, line))
        elif row.id not in answered:
            answered.add(row.id)
            refused.pop(row.id, None)
            yield row, line
    yield from refused.values()


def read_row_ids(path: str | Path) -> set[str]:
    """The ids of a run folder's rows (``path`` as :func:`iter_result_rows`; only the ids
    are validated: fast)."""
    return {row.id for row, _ in validated_lines(path, _RowId)}


def write_atomic(path: Path, text: str) -> None:
    """Write a file atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(path: str | Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` atomically (``path``: the file or its folder)."""
    write_atomic(_file(path, MANIFEST), manifest.model_dump_json(indent=2) + "\n")


def write_summary(path: str | Path, summary: Summary) -> None:
    """Write ``summary.json`` atomically (``path``: the file or its folder).

    Entries left unset are left out, as the aggregator leaves out what does not apply
    (``paper_f1`` without a tokenizer, language entries without labels): readers of the
    raw JSON test for presence, and :class:`Summary` reads them back as null.
    """
    text = summary.model_dump_json(indent=2, exclude_unset=True)
    write_atomic(_file(path, SUMMARY), text + "\n")


_LEFT_OUT = {*FROM_ID, "prompt", "messages"}


def packed_rows(rows: Sequence[ResultRow]) -> bytes:
    """Rows as one gzip member of ``results.jsonl.gz`` (what :meth:`RunDir.append` writes)."""
    return member(b"".join(row_line(row) for row in rows))


def row_line(row: ResultRow) -> bytes:
    """One ``results.jsonl`` line: without what the id says, empty fields or the request
    (stored once in ``prompts.jsonl.gz``)."""
    # The model's own serializer, straight to bytes.
    return to_json(row, exclude=_LEFT_OUT, exclude_none=True) + b"\n"


class RunDir:
    """Exclusive access to one run folder while a run writes to it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: IO[str] | None = None
        self._results: IO[bytes] | None = None
        self.packed = True
        """Whether the rows go to ``results.jsonl.gz`` (not a pre-format-3 folder's)."""

    @property
    def results_path(self) -> Path:
        """The rows' file (:func:`results_file`)."""
        return results_file(self.path)

    def open(self, manifest: Manifest,
             identity_keys: Sequence[str] = Manifest.IDENTITY) -> None:
        """Lock the folder, check or write the manifest, and get ready to append.

        ``identity_keys`` are the manifest entries that must match to resume. A folder's
        earlier ``data_files`` are kept (:meth:`update_manifest` adds this session's).

        Raises:
            ConfigError: another process holds the folder, it holds a different run, or
                its manifest is unreadable (see :func:`read_manifest`).
        """
        new = manifest
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
        try:
            results = self.results_path
        except ConfigError:
            self.close()
            raise
        if not manifest_path.exists() and results.exists() and results.stat().st_size > 0:
            self.close()
            raise ConfigError(
                f"Run folder {self.path} holds {results.name} but no {MANIFEST}: its rows cannot "
                "be told to belong to this run (copied from another run, or the manifest was "
                "deleted). Choose another --run-dir, or move the results file away.")
        if manifest_path.exists():
            try:
                old = read_manifest(manifest_path)
            except ConfigError:
                self.close()
                raise
            for key in identity_keys:
                there, now = getattr(old, key), getattr(new, key)
                if there != now:
                    self.close()
                    raise ConfigError(
                        f"Run folder {self.path} holds a different run: "
                        f"{_differences(key, _shown(there), _shown(now))}. Choose another "
                        "--run-dir, or delete that folder to start over.")
            new = new.model_copy(update={"data_files": old.data_files})
        write_manifest(manifest_path, new)
        self.packed = results.suffix == ".gz"
        if self.packed:
            cut_torn_member(results)
        else:
            self._truncate_torn_line(results)
        self._results = results.open("ab")

    @staticmethod
    def _truncate_torn_line(path: Path) -> None:
        # A kill mid-write can leave a partial last line; drop it so appends stay valid.
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

    def append(self, rows: Sequence[ResultRow]) -> None:
        """Append rows (one gzip member) and flush them to the OS."""
        assert self._results is not None, "RunDir.open() first"
        self._results.write(packed_rows(rows) if self.packed
                            else b"".join(row_line(row) for row in rows))
        self._results.flush()

    def append_packed(self, members: bytes) -> None:
        """Append rows packed by :func:`packed_rows` (a helper's) and flush them."""
        assert self._results is not None and self.packed, "RunDir.open() a packed folder"
        self._results.write(members)
        self._results.flush()

    def update_manifest(self, **entries: Any) -> None:
        """Merge entries into ``manifest.json`` (mappings are merged key by key), e.g.
        ``update_manifest(data_files={path: sha256})``."""
        manifest = read_manifest(self.path / MANIFEST)
        current = manifest.model_dump()
        for key, value in entries.items():
            if isinstance(value, Mapping) and isinstance(current.get(key), dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
        write_manifest(self.path, Manifest.model_validate(current))

    def write_summary(self, summary: Summary) -> None:
        """Write ``summary.json``."""
        write_summary(self.path, summary)

    def close(self) -> None:
        """Flush results and release the lock."""
        if self._results is not None:
            self._results.close()
            self._results = None
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def _shown(value: Any) -> Any:
    """A manifest entry as JSON data, for messages."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _differences(name: str, there: Any, now: Any, limit: int = 4) -> str:
    """``config.limit is 5 there, 10 now; ...``: only the fields that differ.

    >>> _differences("config", {"limit": 5, "tasks": ["zsre"]}, {"limit": 10, "tasks": ["zsre"]})
    'config.limit is 5 there, 10 now'
    """
    if isinstance(there, dict) and isinstance(now, dict):
        parts = [_differences(f"{name}.{k}", there.get(k), now.get(k))
                 for k in sorted(set(there) | set(now), key=str) if there.get(k) != now.get(k)]
        shown = parts[:limit] + ([f"{len(parts) - limit} more"] if len(parts) > limit else [])
        return "; ".join(shown)
    return f"{name} is {there!r} there, {now!r} now"
