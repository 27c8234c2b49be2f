"""download_data against a real loopback HTTP server that serves the shared BMIKE-53 copy."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from mike_sdk.data import download
from mike_sdk.data.download import (
    PROVENANCE_FILE,
    DownloadReport,
    default_data_dir,
    download_data,
    load_manifest,
    write_provenance,
)
from mike_sdk.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MIKE_SHARED_DATA", REPO.parent / "shared" / "bmike53"))

pytestmark = pytest.mark.skipif(
    not (SHARED / "data" / "lang.json").is_file(),
    reason=f"BMIKE-53 copy not found at {SHARED} (set MIKE_SHARED_DATA to its folder)",
)

BIG = "data/BMIKE53/zsRE/zsre_test_af.json"
SUBSET = [
    "data/manual_prompts/zsre.json",
    "data/manual_prompts/mcounterfact.json",
    "data/manual_prompts/wfd.json",
    "data/lang.json",
    BIG,
]
MANIFEST = load_manifest()
BY_PATH = {f.path: f for f in MANIFEST.files}


class DataServer(ThreadingHTTPServer):
    """Serves ``root`` like raw.githubusercontent.com, with knobs to misbehave per path."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str | None]] = []
        """(path, Range header) of every GET, in order."""
        self.corrupt: set[str] = set()
        self.cut_once: set[str] = set()
        self.fail_once: dict[str, int] = {}
        self.ignore_range = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the GETs of ``path``."""
        with self.lock:
            return [rng for p, rng in self.requests if p == path]


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as real servers do: the client must cope with a connection cut mid-body.
    protocol_version = "HTTP/1.1"
    server: DataServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        srv = self.server
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        rng = self.headers.get("Range")
        with srv.lock:
            srv.requests.append((rel, rng))
            fail = srv.fail_once.pop(rel, None)
            cut = rel in srv.cut_once
            srv.cut_once.discard(rel)
        if fail is not None:
            return self._empty(fail)
        file = (srv.root / rel).resolve()
        if not file.is_relative_to(srv.root.resolve()) or not file.is_file():
            return self._empty(404)
        data = file.read_bytes()
        if rel in srv.corrupt:
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        start = 0
        if rng and not srv.ignore_range:
            assert rng.startswith("bytes=") and rng.endswith("-"), rng
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                return self._empty(416)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        self.wfile.write(body)
        return None


@pytest.fixture
def server() -> Iterator[DataServer]:
    srv = DataServer(SHARED)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "_BACKOFF_S", 0.0)


def fetch(srv: DataServer, dest: Path, files: list[str], *, retries: int = 3,
          client: httpx.Client | None = None) -> DownloadReport:
    return download_data(dest, base_url=srv.url, files=files, progress=False, retries=retries,
                         client=client)


def assert_installed(dest: Path, paths: list[str]) -> None:
    for path in paths:
        got = (dest / path).read_bytes()
        assert got == (SHARED / path).read_bytes(), path
        assert hashlib.sha256(got).hexdigest() == BY_PATH[path].sha256
        assert not (dest / (path + ".part")).exists()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_manifest_lists_every_shared_file_with_its_size() -> None:
    on_disk = {p.relative_to(SHARED).as_posix(): p.stat().st_size
               for p in (SHARED / "data").rglob("*") if p.is_file()}
    assert {f.path: f.size for f in MANIFEST.files} == on_disk
    assert MANIFEST.commit == "6e3e245bf0a17edaecfb4d71664efc1b5fb67906"
    assert MANIFEST.base_url == f"https://raw.githubusercontent.com/ercong21/MultiKnow/{MANIFEST.commit}/"


def test_download_subset_lays_out_verified_files(server: DataServer, tmp_path: Path) -> None:
    report = fetch(server, tmp_path, SUBSET)
    assert report.dest == tmp_path
    assert sorted(report.downloaded) == sorted(SUBSET)
    assert report.skipped == ()
    assert report.bytes_downloaded == sum(BY_PATH[p].size for p in SUBSET)
    assert_installed(tmp_path, SUBSET)
    assert all(server.gets(p) == [None] for p in SUBSET)
    source = json.loads((tmp_path / PROVENANCE_FILE).read_text(encoding="utf-8"))
    assert source["repository"] == "ercong21/MultiKnow"
    assert source["commit"] == MANIFEST.commit
    assert source["files"] == {p: {"size": BY_PATH[p].size, "sha256": BY_PATH[p].sha256}
                               for p in SUBSET}


def test_second_download_skips_everything(server: DataServer, tmp_path: Path) -> None:
    fetch(server, tmp_path, SUBSET)
    server.requests.clear()
    report = fetch(server, tmp_path, SUBSET)
    assert server.requests == []
    assert report.downloaded == ()
    assert sorted(report.skipped) == sorted(SUBSET)
    assert report.bytes_downloaded == 0


def test_short_names_and_custom_client(server: DataServer, tmp_path: Path) -> None:
    with httpx.Client() as client:
        report = fetch(server, tmp_path, ["lang.json", "data/lang.json"], client=client)
        assert not client.is_closed  # the caller's client stays the caller's
    assert report.downloaded == ("data/lang.json",)
    assert_installed(tmp_path, ["data/lang.json"])


def leave_part(dest: Path, data: bytes) -> None:
    """What an interrupted download of BIG leaves behind."""
    part = dest / (BIG + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data)


def test_resume_sends_range_and_appends(server: DataServer, tmp_path: Path) -> None:
    full = (SHARED / BIG).read_bytes()
    leave_part(tmp_path, full[:300_000])
    report = fetch(server, tmp_path, [BIG])
    assert server.gets(BIG) == ["bytes=300000-"]
    assert report.bytes_downloaded == len(full) - 300_000
    assert_installed(tmp_path, [BIG])


def test_server_ignoring_range_starts_over(server: DataServer, tmp_path: Path) -> None:
    server.ignore_range = True
    full = (SHARED / BIG).read_bytes()
    leave_part(tmp_path, full[:1000])
    report = fetch(server, tmp_path, [BIG])
    assert server.gets(BIG) == ["bytes=1000-"]
    assert report.bytes_downloaded == len(full)
    assert_installed(tmp_path, [BIG])


def test_wrong_existing_file_is_replaced(server: DataServer, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lang.json").write_text("{}", encoding="utf-8")
    report = fetch(server, tmp_path, ["data/lang.json"])
    assert report.downloaded == ("data/lang.json",)
    assert_installed(tmp_path, ["data/lang.json"])


def test_corrupted_file_raises_and_leaves_nothing(server: DataServer, tmp_path: Path) -> None:
    path = "data/manual_prompts/zsre.json"
    server.corrupt.add(path)
    data = bytearray((SHARED / path).read_bytes())
    data[100] ^= 0xFF
    with pytest.raises(DataError) as info:
        fetch(server, tmp_path, ["data/lang.json", path])
    message = str(info.value)
    assert path in message and BY_PATH[path].sha256 in message and sha256(bytes(data)) in message
    assert not (tmp_path / path).exists()
    assert not (tmp_path / (path + ".part")).exists()
    assert_installed(tmp_path, ["data/lang.json"])  # files before the bad one stay valid
    assert not (tmp_path / PROVENANCE_FILE).exists()


def test_404_names_url_and_commit(server: DataServer, tmp_path: Path) -> None:
    # A mirror whose prefix does not hold the tree answers 404.
    with pytest.raises(DataError) as info:
        download_data(tmp_path, base_url=server.url + "mirror", files=["data/lang.json"],
                      progress=False, retries=3)
    message = str(info.value)
    assert f"{server.url}mirror/data/lang.json" in message
    assert "404" in message and MANIFEST.commit in message
    assert len(server.gets("mirror/data/lang.json")) == 1  # a 404 is not retried


def test_interrupted_transfer_then_rerun_resumes(server: DataServer, tmp_path: Path) -> None:
    server.cut_once.add(BIG)
    with pytest.raises(DataError, match="rerun to resume"):
        fetch(server, tmp_path, [BIG], retries=0)
    part = tmp_path / (BIG + ".part")
    kept = part.stat().st_size
    assert 0 < kept < BY_PATH[BIG].size
    assert not (tmp_path / BIG).exists()
    report = fetch(server, tmp_path, [BIG], retries=0)
    assert server.gets(BIG) == [None, f"bytes={kept}-"]
    assert report.bytes_downloaded == BY_PATH[BIG].size - kept
    assert_installed(tmp_path, [BIG])


def test_retry_resumes_within_one_call(server: DataServer, tmp_path: Path) -> None:
    server.cut_once.add(BIG)
    report = fetch(server, tmp_path, [BIG], retries=1)
    ranges = server.gets(BIG)
    assert len(ranges) == 2 and ranges[0] is None and (ranges[1] or "").startswith("bytes=")
    assert report.bytes_downloaded == BY_PATH[BIG].size
    assert_installed(tmp_path, [BIG])


def test_5xx_is_retried_then_reported(server: DataServer, tmp_path: Path) -> None:
    server.fail_once["data/lang.json"] = 503
    fetch(server, tmp_path / "a", ["data/lang.json"], retries=1)
    assert_installed(tmp_path / "a", ["data/lang.json"])
    server.fail_once["data/lang.json"] = 502
    with pytest.raises(DataError, match="502"):
        fetch(server, tmp_path / "b", ["data/lang.json"], retries=0)


def test_unknown_file_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data/lang\.json"):
        download_data(tmp_path, files=["data/langs.json"], progress=False)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIKE_CACHE_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path / "bmike53"
    monkeypatch.delenv("MIKE_CACHE_DIR")
    assert default_data_dir().name == "bmike53"
    assert "mike-sdk" in default_data_dir().parent.as_posix()


def test_write_provenance_lists_present_files(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lang.json").write_bytes((SHARED / "data" / "lang.json").read_bytes())
    out = write_provenance(tmp_path)
    record = json.loads(out.read_text(encoding="utf-8"))
    assert out == tmp_path / PROVENANCE_FILE
    assert list(record["files"]) == ["data/lang.json"]
    assert record["downloaded_from"] == MANIFEST.base_url
