"""Loading BMIKE-53 from a folder in the official repository's layout.

The folder is either a clone of the official repository (holding ``data/``) or
its ``data/`` folder itself. Test files are read lazily, one language at a time,
so a whole-benchmark run never holds more than two languages in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mike_sdk.data.languages import LANGUAGES, demo_code, normalize_language
from mike_sdk.errors import DataError, unknown_name
from mike_sdk.records import TASKS, Demonstration, FactRecord, Item, TaskName

DATA_ENV = "MIKE_DATA_DIR"
HOW_TO_GET = ("Get it with `mike data download`, or point --data-dir (or the MIKE_DATA_DIR "
              "environment variable) at a clone of https://github.com/ercong21/MultiKnow.")


@dataclass(frozen=True)
class TaskFiles:
    """Where one task's files live in the official layout."""

    folder: str
    test_stem: str
    demos: str
    corpus_idx: str
    train_pool: str


TASK_FILES: dict[TaskName, TaskFiles] = {
    "zsre": TaskFiles("zsRE", "zsre_test", "zsre", "mzsre", "zsre_mend_train_10000.json"),
    "counterfact": TaskFiles("CounterFact", "counterfact_test", "mcounterfact", "mcounterfact",
                             "counterfact-train.json"),
    "wikifactdiff": TaskFiles("WikiFactDiff", "wfd_test", "wfd", "wfd", "wfd-train.json"),
}


def task_name(name: str) -> TaskName:
    """The canonical task name, accepting the short names the data files use."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    aliases = {"zsre": "zsre", "counterfact": "counterfact", "mcounterfact": "counterfact",
               "cf": "counterfact", "wikifactdiff": "wikifactdiff", "wfd": "wikifactdiff"}
    if key not in aliases:
        raise unknown_name("task", name, TASKS)
    return aliases[key]  # type: ignore[return-value]


@dataclass
class ItemSet:
    """The scorable items of one task in one source x target language pair."""

    task: TaskName
    source_lang: str
    target_lang: str
    items: list[Item]
    missing: int = 0
    """Items skipped because the source or target language entry is absent."""
    invalid: int = 0
    """Items skipped because an entry lacks a required field."""
    files: dict[str, str] = field(default_factory=dict)
    """sha256 of each file read, by path relative to the data root."""

    @property
    def skipped(self) -> int:
        """All items that cannot be scored in this language pair."""
        return self.missing + self.invalid


def read_json(path: Path) -> tuple[Any, str]:
    """Parse a data file; returns the value and the file's sha256."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"Missing data file {path}. {HOW_TO_GET}") from None
    try:
        return json.loads(raw), hashlib.sha256(raw).hexdigest()
    except json.JSONDecodeError as exc:
        raise DataError(f"Malformed JSON in {path} at line {exc.lineno}, column {exc.colno} "
                        f"(character {exc.pos}): {exc.msg}. Re-download the file with "
                        "`mike data download`.") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}). Re-download it with "
                        "`mike data download`.") from None


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data folder: the argument, else ``$MIKE_DATA_DIR``, else the user cache folder."""
    if data_dir is not None:
        origin, path = "--data-dir", Path(data_dir)
    elif os.environ.get(DATA_ENV):
        origin, path = DATA_ENV, Path(os.environ[DATA_ENV])
    else:
        from mike_sdk.data.download import default_data_dir

        origin, path = "the default cache folder", default_data_dir()
    path = path.expanduser()
    for candidate in (path / "data", path):
        if (candidate / "BMIKE53").is_dir():
            return candidate
    raise DataError(f"No BMIKE-53 data at {path} (from {origin}): expected the folder "
                    f"{path / 'data' / 'BMIKE53'} or {path / 'BMIKE53'}. {HOW_TO_GET}")


class Benchmark:
    """BMIKE-53 on disk.

    >>> bench = Benchmark("bmike53")
    >>> items = bench.items("zsre", target_lang="zh")
    >>> len(items.items), items.items[0].question("reliability").text
    (742, '国际田联综合项目挑战赛的创立时间是什么时候？')
    """

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.root = resolve_data_dir(data_dir)
        self._demos: dict[TaskName, tuple[Demonstration, ...]] = {}

    def __repr__(self) -> str:
        return f"Benchmark({str(self.root)!r})"

    def test_file(self, task: TaskName, lang: str) -> Path:
        """Path of a task's test file for one language."""
        files = TASK_FILES[task]
        return self.root / "BMIKE53" / files.folder / f"{files.test_stem}_{lang}.json"

    def _records(self, task: TaskName, lang: str) -> tuple[list[Any], str, Path]:
        path = self.test_file(task, lang)
        rows, digest = read_json(path)
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of items, found {type(rows).__name__}.")
        return rows, digest, path

    def items(self, task: str, target_lang: str, source_lang: str = "en",
              limit: int | None = None) -> ItemSet:
        """The items of ``task`` with the edit in ``source_lang`` and questions in ``target_lang``.

        Items lacking either language are skipped and counted, never dropped silently.
        With ``limit``, only the first ``limit`` positions are read into items (and counted
        as skipped): the rest of the file is parsed but never validated.
        """
        name = task_name(task)
        target, source = normalize_language(target_lang), normalize_language(source_lang)
        # Every file carries the English record, so en->xx needs one file; the
        # *_test_en.json files pair en with de, hence "en" reads the de file's en too.
        target_rows, target_hash, target_path = self._records(name, target)
        files = {self.relative(target_path): target_hash}
        if source in (target, "en"):
            source_rows = target_rows
        else:
            source_rows, source_hash, source_path = self._records(name, source)
            files[self.relative(source_path)] = source_hash
            if len(source_rows) != len(target_rows):
                raise DataError(f"{source_path} has {len(source_rows)} items but {target_path} "
                                f"has {len(target_rows)}: the files must be position-aligned.")
        out = ItemSet(name, source, target, [], files=files)
        if limit is not None:
            source_rows = source_rows[:max(limit, 0)]
            target_rows = target_rows[:max(limit, 0)]
        for index, (src_row, tgt_row) in enumerate(zip(source_rows, target_rows, strict=True)):
            src_rec, tgt_rec = _entry(src_row, source), _entry(tgt_row, target)
            if src_rec is None or tgt_rec is None:
                out.missing += 1
                continue
            try:
                item = Item(task=name, index=index, source_lang=source, target_lang=target,
                            source=FactRecord.model_validate(src_rec),
                            target=FactRecord.model_validate(tgt_rec))
            except ValidationError:
                out.invalid += 1
                continue
            out.items.append(item)
        return out

    def iter_items(self, task: str, target_lang: str, source_lang: str = "en",
                   limit: int | None = None) -> Iterator[Item]:
        """Shortcut for ``items(...).items``."""
        yield from self.items(task, target_lang, source_lang, limit).items

    def demonstrations(self, task: str) -> tuple[Demonstration, ...]:
        """The 32 hand-written demonstrations of a task, in the paper's numbering (1-32)."""
        name = task_name(task)
        if name not in self._demos:
            self._demos[name] = self._load_demos(name)
        return self._demos[name]

    def demonstration_files(self, task: str) -> dict[str, str]:
        """sha256 of the demonstration files of a task, by relative path."""
        path = self._demo_path(task_name(task))
        return {self.relative(path): read_json(path)[1]}

    def _demo_path(self, task: TaskName) -> Path:
        return self.root / "manual_prompts" / f"{TASK_FILES[task].demos}_multi.json"

    def _load_demos(self, task: TaskName) -> tuple[Demonstration, ...]:
        path = self._demo_path(task)
        rows, _ = read_json(path)
        demos = []
        for pos, row in enumerate(rows):
            try:
                texts = {code: row[demo_code(code)] for code in LANGUAGES if code != "en"}
                texts["en"] = row["prompt"]
                demos.append(Demonstration(case_id=row["case_id"], type=row["type"],
                                           new_fact=row["new_fact"], texts=texts))
            except (KeyError, TypeError, ValidationError) as exc:
                raise DataError(f"{path}: demonstration #{pos + 1} is malformed "
                                f"({exc.__class__.__name__}: {exc}).") from None
        if [d.case_id for d in demos] != list(range(1, len(demos) + 1)):
            raise DataError(f"{path}: demonstrations must be numbered 1..{len(demos)} in order.")
        return tuple(demos)

    def corpus_idx(self, task: str) -> tuple[list[dict[str, Any]], str]:
        """Precomputed nearest training-pool facts for each test item (``corpus_idx``), and
        the file's sha256."""
        path = self.corpus_idx_file(task)
        rows, digest = read_json(path)
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list, found {type(rows).__name__}.")
        return rows, digest

    def corpus_idx_file(self, task: str) -> Path:
        """Path of a task's ``corpus_idx`` file."""
        stem = TASK_FILES[task_name(task)].corpus_idx
        return self.root / "corpus_idx" / f"{stem}_corpus_idx.json"

    def training_pool_file(self, task: str) -> Path:
        """Path of a task's English training pool (the retrieval corpus)."""
        files = TASK_FILES[task_name(task)]
        return self.root / "BMIKE53" / files.folder / files.train_pool

    def training_pool(self, task: str) -> tuple[list[dict[str, Any]], str]:
        """The English training-pool records of a task and the file's sha256.

        WikiFactDiff wraps each record as ``{"en": {...}}``; it is unwrapped here.
        """
        path = self.training_pool_file(task)
        rows, digest = read_json(path)
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of facts, found {type(rows).__name__}.")
        records = [row.get("en", row) if isinstance(row, dict) else row for row in rows]
        for pos, record in enumerate(records):
            if not isinstance(record, dict) or "case_id" not in record:
                raise DataError(f"{path}: fact #{pos + 1} is not an object with a case_id.")
        return records, digest

    def relative(self, path: Path) -> str:
        """``path`` relative to the data root, as run manifests record it."""
        return path.relative_to(self.root).as_posix()


def _entry(row: Any, lang: str) -> dict[str, Any] | None:
    if not isinstance(row, dict):
        return None
    entry = row.get(lang)
    return entry if isinstance(entry, dict) else None
