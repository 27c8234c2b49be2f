"""``prompts.jsonl.gz``: the request behind each row, stored once.

Rows repeat their prompt no longer: a full configuration's prompts are 0.7 GB of text,
most of it the same demonstrations again and again. Each request is stored once per
run folder, by its cache key (the row's ``cache_key``), and each long text before the
last blank line of a prompt (the demonstrations block) or a long system message is
stored once as a *block* and referenced. The file is a series of gzip members, one per
chunk of rows, written before those rows: appendable, and a member torn by a crash is
cut off when the folder is opened again.

Lines, inside the gzip stream:

* ``{"b": ID, "t": TEXT}``: a block;
* ``{"k": KEY, "p": PARTS}`` or ``{"k": KEY, "m": [[ROLE, PARTS], ...]}``: a request,
  its completion prompt or its chat messages, each text as ``PARTS``: strings and
  ``{"b": ID}`` references, concatenated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from pydantic_core import to_json

from mike_sdk.backend import ChatMessage, GenerationRequest
from mike_sdk.runfolder.files import PROMPTS
from mike_sdk.runfolder.members import complete_members, cut_torn_member, member

__all__ = ["PromptStore", "StoredRequests", "iter_entries", "read_requests"]

#: Texts before a prompt's last blank line at least this long become blocks.
MIN_BLOCK = 200
#: Block texts whose ids are remembered (a full configuration has a few hundred: every
#: prompt of a language pair repeats one), so that each is hashed once, not once a row.
_REMEMBERED = 4096
#: Compression level of a member: zlib's default; on a full configuration's 137 MB of
#: request lines, level 9 took 7.8 s for a file 1.4% smaller (36.1 MB against 35.6).
LEVEL = 6

Parts = list[str | dict[str, str]]


class Sent(Protocol):
    """What a request sent: its prompt or its messages (a request, or a row)."""

    @property
    def prompt(self) -> str | None: ...
    @property
    def messages(self) -> tuple[ChatMessage, ...] | None: ...


def stored_key(key: str) -> bytes | str:
    """How :class:`PromptStore` remembers a cache key: a 64-digit hex key as its first 16
    bytes (49 bytes in memory, not 113: a full configuration holds half a million)."""
    if len(key) == 64:
        try:
            return bytes.fromhex(key[:32])
        except ValueError:
            pass
    return key


class PromptStore:
    """Appends requests to a run folder's ``prompts.jsonl.gz``, each key once."""

    def __init__(self, folder: Path | None, known: set[bytes | str] | None = None) -> None:
        self.path = None if folder is None else folder / PROMPTS
        """The file (None: requests are only :meth:`encode` d, for another process to
        write)."""
        self._known = known if known is not None else set()
        """Keys already stored (the rows already written say which), as :func:`stored_key`
        gives them: the caller's set, taken over and added to."""
        self._blocks: set[str] = set()
        self._ids: dict[str, str] = {}
        """Block ids by text, of the blocks met lately (bounded: :data:`_REMEMBERED`)."""
        if self.path is not None:  # a member torn by a crash: its rows were never written
            cut_torn_member(self.path)

    def _parts(self, text: str, lines: list[bytes], whole: bool = False) -> Parts:
        cut = len(text) if whole else text.rfind("\n\n") + 2
        if cut < MIN_BLOCK:
            return [text]
        head = text[:cut]
        block = self._ids.get(head)
        if block is None:
            if len(self._ids) >= _REMEMBERED:
                self._ids.clear()
            block = self._ids[head] = hashlib.sha256(head.encode("utf-8")).hexdigest()[:16]
        if block not in self._blocks:
            self._blocks.add(block)
            lines.append(to_json({"b": block, "t": head}))
        return [{"b": block}, text[cut:]] if cut < len(text) else [{"b": block}]

    def add(self, requests: Iterable[tuple[str, Sent]]) -> None:
        """Store the requests (or rows, which carry their request) whose keys are new, as
        one gzip member."""
        self.write(self.encode(requests))

    def write(self, members: bytes) -> None:
        """Append gzip members of request lines (:meth:`encode` d here or elsewhere)."""
        if members:
            assert self.path is not None, "a PromptStore without a folder only encodes"
            with self.path.open("ab") as fh:
                fh.write(members)

    def encode(self, requests: Iterable[tuple[str, Sent]]) -> bytes:
        """The gzip member that :meth:`add` writes (empty when no key is new)."""
        # pydantic-core's JSON (UTF-8, compact): a seventh of json.dumps's time a line.
        lines: list[bytes] = []
        for key, request in requests:
            remembered = stored_key(key)
            if remembered in self._known:
                continue
            self._known.add(remembered)
            entry: dict[str, Any] = {"k": key}
            if request.prompt is not None:
                entry["p"] = self._parts(request.prompt, lines)
            if request.messages is not None:
                last = len(request.messages) - 1
                entry["m"] = [[m.role, self._parts(m.content, lines, whole=i < last)]
                              for i, m in enumerate(request.messages)]
            lines.append(to_json(entry))
        return member(b"\n".join(lines) + b"\n", level=LEVEL) if lines else b""


def iter_entries(folder: str | Path) -> Iterator[dict[str, Any]]:
    """The lines of a run folder's ``prompts.jsonl.gz`` as stored (blocks and requests, see
    above), in file order; a member torn by a crash and what follows it are left out."""
    for entry, _ in _entries(folder):
        yield entry


def _entries(folder: str | Path) -> Iterator[tuple[dict[str, Any], str]]:
    """:func:`iter_entries`, each with its line."""
    for _, text in complete_members(Path(folder) / PROMPTS):
        for line in text.decode("utf-8").splitlines():
            yield json.loads(line), line


class StoredRequests:
    """A run folder's stored requests, read once and expanded on demand: each kept as its
    stored line (a fraction of its text: the demonstrations are blocks), for readers that
    look up many rows' requests (``mike export --prompts``)."""

    def __init__(self, folder: str | Path) -> None:
        self._blocks: dict[str, str] = {}
        self._lines: dict[str, str] = {}
        for entry, line in _entries(folder):
            if "b" in entry:
                self._blocks.setdefault(entry["b"], entry["t"])
            else:
                self._lines.setdefault(entry["k"], line)

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def _text(self, parts: Parts) -> str:
        return "".join(p if isinstance(p, str) else self._blocks[p["b"]] for p in parts)

    def get(self, key: str) -> GenerationRequest | None:
        """The request stored under a cache key (prompt and messages only), if any."""
        line = self._lines.get(key)
        if line is None:
            return None
        entry = json.loads(line)
        messages = tuple(ChatMessage(role=role, content=self._text(parts))
                         for role, parts in entry["m"]) if "m" in entry else None
        return GenerationRequest.model_construct(
            prompt=self._text(entry["p"]) if "p" in entry else None, messages=messages)


def read_requests(folder: str | Path) -> dict[str, GenerationRequest]:
    """The stored requests of a run folder by cache key (prompt and messages only)."""
    stored = StoredRequests(folder)
    return {key: request for key in stored if (request := stored.get(key)) is not None}
