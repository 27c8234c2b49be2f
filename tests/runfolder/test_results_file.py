"""The rows' file of format 3, ``results.jsonl.gz``: ordinary tools read it, a member torn
by a kill is skipped by readers and cut before the next append, and folders of format 2
(plain ``results.jsonl``) still read and resume in place. Mock backend, real files."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from mike_sdk.cli.main import main
from mike_sdk.errors import ConfigError
from mike_sdk.runfolder import export as export_module
from mike_sdk.runfolder.files import PLAIN_RESULTS, RESULTS
from mike_sdk.runfolder.members import member
from mike_sdk.runfolder.rundir import RunDir, iter_result_rows, read_manifest, results_file

ROWS = 2 * 4  # zsre: 2 items x 4 metrics, one target language


def _eval(data_dir: Path, run: Path, cache: Path) -> int:
    return main(["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
                 "--languages", "de", "--limit", "2", "--run-dir", str(run), "--cache-dir",
                 str(cache), "--no-progress", "--language-id", "script", "--no-likelihood"])


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A run folder the evaluator wrote (the cache beside it)."""
    root = tmp_path_factory.mktemp("results-file")
    assert _eval(data_dir, root / "run", root / "cache") == 0
    return root / "run"


@pytest.fixture
def run(written: Path, tmp_path: Path) -> Path:
    """A copy of that folder, to damage."""
    shutil.copytree(written, tmp_path / "run")
    shutil.copytree(written.parent / "cache", tmp_path / "cache")
    return tmp_path / "run"


def test_ordinary_tools_read_the_rows(written: Path) -> None:
    path = results_file(written)
    assert path.name == RESULTS and not (written / PLAIN_RESULTS).exists()
    ids = [r.id for r in iter_result_rows(written)]
    assert len(ids) == ROWS
    with gzip.open(path, "rt", encoding="utf-8") as fh:  # what zcat and jq see
        assert len(fh.read().splitlines()) == ROWS
    if shutil.which("zcat"):
        shown = subprocess.run(["zcat", str(path)], capture_output=True, check=True).stdout
        assert shown.count(b"\n") == ROWS
    pandas = pytest.importorskip("pandas")
    assert pandas.read_json(path, lines=True)["id"].tolist() == ids
    duckdb = pytest.importorskip("duckdb")
    assert duckdb.sql(f"SELECT count(*) FROM read_json_auto('{path}')").fetchall() == [(ROWS,)]


def test_a_torn_member_is_skipped_then_cut_and_appends_go_on(run: Path) -> None:
    path = results_file(run)
    rows = list(iter_result_rows(run))
    size = path.stat().st_size
    torn = member(b"".join(b'{"id": "zsre/en>de/9/reliability"}\n' for _ in range(50)))
    with path.open("ab") as fh:  # a session killed in the middle of an append
        fh.write(torn[: len(torn) // 2])
    assert list(iter_result_rows(run)) == rows
    folder = RunDir(run)
    folder.open(read_manifest(run))
    assert path.stat().st_size == size  # cut before the next append
    folder.append(rows[:2])
    folder.close()
    assert list(iter_result_rows(run)) == [*rows, *rows[:2]]


def test_a_resumed_run_redoes_what_a_kill_lost(run: Path, data_dir: Path) -> None:
    path = results_file(run)
    ids = sorted(r.id for r in iter_result_rows(run))
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(member(b"".join(lines[:3])) + member(b"".join(lines[3:]))[:40])
    assert len(list(iter_result_rows(run))) == 3
    assert _eval(data_dir, run, run.parent / "cache") == 0
    assert sorted(r.id for r in iter_result_rows(run)) == ids


def test_a_plain_folder_of_format_2_reads_and_resumes_in_place(run: Path,
                                                                data_dir: Path) -> None:
    packed = results_file(run)
    rows = list(iter_result_rows(run))
    lines = gzip.decompress(packed.read_bytes()).splitlines(keepends=True)
    (run / PLAIN_RESULTS).write_bytes(b"".join(lines[:-2]) + lines[-2][:10])  # torn line
    packed.unlink()
    assert results_file(run) == run / PLAIN_RESULTS
    assert list(iter_result_rows(run)) == rows[:-2]
    assert _eval(data_dir, run, run.parent / "cache") == 0  # redoes the two lost items
    assert not packed.exists()
    assert sorted(r.id for r in iter_result_rows(run)) == sorted(r.id for r in rows)
    assert len((run / PLAIN_RESULTS).read_text("utf-8").splitlines()) == ROWS


def test_a_folder_with_both_files_is_refused(run: Path) -> None:
    shutil.copy(results_file(run), run / PLAIN_RESULTS)
    with pytest.raises(ConfigError, match=r"holds both results\.jsonl and results\.jsonl\.gz"):
        list(iter_result_rows(run))


def test_parquet_is_written_a_batch_at_a_time(run: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(export_module, "PARQUET_BATCH", 3)
    out = tmp_path / "rows.parquet"
    assert export_module.export(run, out, "parquet") == ROWS
    table = pq.ParquetFile(out)
    assert table.metadata.num_row_groups == 3  # 3 + 3 + 2 rows
    assert table.read().column("id").to_pylist() == [r.id for r in iter_result_rows(run)]
