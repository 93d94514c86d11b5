"""Downloads (resume, checksums, offline failure) against a loopback HTTP server, and safe
extraction of hostile zip and tar archives."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llbench.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download,
    fetch_weights,
    safe_extract,
)
from llbench.errors import WeightsError
from llbench.specs import WeightsRef


# -- a loopback server ---------------------------------------------------------------------------
class LoopbackServer:
    """Serves ``files`` on 127.0.0.1 with HTTP Range support and scripted misbehaviour.

    ``cut_after[path] = n``: the next request for ``path`` sends its headers, ``n`` bytes, then
    drops the connection. ``ignore_range``: answer 200 with the whole file even to a Range.
    ``requests`` records ``(path, Range header)`` of every request.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "not here")
                    return
                start = 0
                if rng and not server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:
                    payload = payload[:cut]
                self.wfile.write(payload)
                server.bytes_sent += len(payload)
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


def payload(n: int = 200_000, seed: int = 0) -> bytes:
    return bytes((i * 131 + seed * 17 + (i >> 8)) % 251 for i in range(n))


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# -- download ------------------------------------------------------------------------------------
def test_download_into_folder_checks_sha256(server, tmp_path):
    body = payload()
    server.files["/data/a.zip"] = body
    out = download(server.url("/data/a.zip"), f"{tmp_path}/dl/", sha(body), progress=False)
    assert out == tmp_path / "dl" / "a.zip"
    assert out.read_bytes() == body
    assert not out.with_name("a.zip.part").exists()


def test_interrupted_download_resumes_with_range(server, tmp_path):
    body = payload()
    server.files["/a.bin"] = body
    server.cut_after["/a.bin"] = 50_000
    dest = tmp_path / "a.bin"
    with pytest.raises(DownloadError, match="resume"):
        download(server.url("/a.bin"), dest, sha(body), progress=False, timeout=5)
    part = tmp_path / "a.bin.part"
    assert part.stat().st_size == 50_000 and not dest.exists()
    sent_before = server.bytes_sent
    out = download(server.url("/a.bin"), dest, sha(body), progress=True, timeout=5)
    assert out.read_bytes() == body
    assert server.requests[-1] == ("/a.bin", "bytes=50000-")
    assert server.bytes_sent - sent_before == len(body) - 50_000  # only the rest came
    assert not part.exists()


def test_server_that_ignores_range_restarts_cleanly(server, tmp_path):
    body = payload(30_000)
    server.files["/b.bin"] = body
    server.ignore_range = True
    (tmp_path / "b.bin.part").write_bytes(b"stale bytes from another file")
    out = download(server.url("/b.bin"), tmp_path / "b.bin", sha(body), progress=False)
    assert out.read_bytes() == body
    assert server.requests[-1][1] is not None  # it did ask to resume


def test_complete_part_file_answered_416_is_finished(server, tmp_path):
    body = payload(10_000)
    server.files["/c.bin"] = body
    (tmp_path / "c.bin.part").write_bytes(body)
    out = download(server.url("/c.bin"), tmp_path / "c.bin", sha(body), progress=False)
    assert out.read_bytes() == body


def test_checksum_mismatch_deletes_download(server, tmp_path):
    body = payload(5_000)
    server.files["/d.bin"] = body
    dest = tmp_path / "d.bin"
    with pytest.raises(ChecksumError, match="checksum mismatch") as err:
        download(server.url("/d.bin"), dest, "0" * 64, progress=False)
    assert sha(body) in str(err.value) and "0" * 64 in str(err.value)
    assert not dest.exists() and not (tmp_path / "d.bin.part").exists()


def test_existing_file_is_reused_or_rejected(server, tmp_path):
    body = payload(1_000)
    dest = tmp_path / "e.bin"
    dest.write_bytes(body)
    assert download(server.url("/e.bin"), dest, sha(body), progress=False) == dest
    assert server.requests == []  # no network needed
    with pytest.raises(ChecksumError, match="different or damaged"):
        download(server.url("/e.bin"), dest, sha(b"other"), progress=False)


def test_http_error_names_the_status(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("/missing.zip"), tmp_path / "m.zip", progress=False)


def test_unreachable_host_fails_with_manual_steps(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "x.tar"
    with pytest.raises(DownloadError) as err:
        download(f"http://127.0.0.1:{port}/x.tar", dest, "a" * 64, progress=False, manual="See X.")
    msg = str(err.value)
    assert f"place the file at {dest}" in msg and "a" * 64 in msg and "See X." in msg


def test_silent_server_times_out_instead_of_hanging(tmp_path):
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(DownloadError, match="could not download|interrupted"):
            download(f"http://127.0.0.1:{port}/y", tmp_path / "y", progress=False, timeout=0.5)


def test_offline_switch_makes_no_request(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LLBENCH_OFFLINE", "1")
    server.files["/z"] = b"zz"
    with pytest.raises(DownloadError, match="LLBENCH_OFFLINE"):
        download(server.url("/z"), tmp_path / "z", progress=False)
    assert server.requests == []


def test_fetch_weights_downloads_once_and_checks_cache(server, tmp_path):
    body = payload(4_000, seed=3)
    server.files["/w/model.pth"] = body
    ref = WeightsRef(url=server.url("/w/model.pth"), sha256=sha(body), filename="model.pth")
    cache = tmp_path / "cache" / "weights" / "m"
    path = fetch_weights(ref, cache, progress=False)
    assert path == cache / "model.pth" and path.read_bytes() == body
    n = len(server.requests)
    assert fetch_weights(ref, cache, progress=False) == path
    assert len(server.requests) == n
    path.write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="released weights"):
        fetch_weights(ref, cache, progress=False)


# -- safe extraction -----------------------------------------------------------------------------
def _zip(path: Path, entries: list[tuple[str, bytes | str, str]]) -> Path:
    """entries: (name, data, kind) with kind "file", "dir" or "symlink" (data = target)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, kind in entries:
            info = zipfile.ZipInfo(name)
            if kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
            else:
                info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    return path


def _tar(path: Path, entries: list[tuple[str, bytes | str, str]], mode: str = "w") -> Path:
    """entries: (name, data, kind) with kind file, dir, symlink, hardlink (data = link), device."""
    with tarfile.open(path, mode) as tf:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = data if isinstance(data, bytes) else data.encode()
                info.size = len(data)
                info.mode = 0o4755 if name.endswith(".sh") else 0o644
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, data
            elif kind == "device":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tf.addfile(info)
    return path


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


GOOD = [
    ("data/", b"", "dir"),
    ("data/low/1.png", b"one", "file"),
    ("data/high/1.png", b"ONE", "file"),
    ("data/latest", "low", "symlink"),
]


def test_zip_extracts_files_and_inside_links(tmp_path):
    archive = _zip(tmp_path / "ok.zip", GOOD)
    dest = tmp_path / "out"
    written = safe_extract(archive, dest)
    assert (dest / "data/low/1.png").read_bytes() == b"one"
    assert (dest / "data/latest").is_symlink() and (
        dest / "data/latest/1.png"
    ).read_bytes() == b"one"
    assert len(written) == 3


@pytest.mark.parametrize(
    "mode,suffix", [("w", ".tar"), ("w:gz", ".tar.gz"), ("w:bz2", ".tar.bz2"), ("w:xz", ".tar.xz")]
)
def test_tar_variants_extract(tmp_path, mode, suffix):
    entries = GOOD + [
        ("data/copy.png", "data/low/1.png", "hardlink"),
        ("data/run.sh", b"#!", "file"),
    ]
    archive = _tar(tmp_path / f"ok{suffix}", entries, mode)
    dest = tmp_path / "out"
    safe_extract(archive, dest)
    copy = dest / "data/copy.png"
    assert copy.read_bytes() == b"one" and not copy.is_symlink()
    assert copy.stat().st_nlink == 1  # written as a copy, not a hard link
    assert stat.S_IMODE((dest / "data/run.sh").stat().st_mode) & 0o7000 == 0  # no setuid


HOSTILE_ZIP = {
    "dotdot": [("ok.txt", b"x", "file"), ("../evil.txt", b"pwned", "file")],
    "nested-dotdot": [("a/b/../../../evil.txt", b"pwned", "file")],
    "absolute": [("/tmp/llbench-evil.txt", b"pwned", "file")],
    "windows-absolute": [("C:\\evil.txt", b"pwned", "file")],
    "symlink-out": [("link", "../../outside", "symlink")],
    "symlink-absolute": [("link", "/etc", "symlink")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIP))
def test_hostile_zip_is_refused_before_writing(tmp_path, case):
    archive = _zip(tmp_path / "bad.zip", HOSTILE_ZIP[case])
    dest = tmp_path / "a" / "out"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest)
    assert _files_under(dest) == []  # nothing written, not even the harmless member
    assert not (tmp_path / "a" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


HOSTILE_TAR = {
    "dotdot": [("ok.txt", b"x", "file"), ("../evil.txt", b"pwned", "file")],
    "absolute": [("/tmp/llbench-evil.txt", b"pwned", "file")],
    "symlink-out": [("link", "../../outside", "symlink")],
    "symlink-absolute": [("etc", "/etc", "symlink")],
    "hardlink-out": [("pw", "../../etc/passwd", "hardlink")],
    "hardlink-absolute": [("pw", "/etc/passwd", "hardlink")],
    "device": [("null", b"", "device")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TAR))
def test_hostile_tar_is_refused_before_writing(tmp_path, case):
    archive = _tar(tmp_path / "bad.tar.gz", HOSTILE_TAR[case], "w:gz")
    dest = tmp_path / "a" / "out"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest)
    assert _files_under(dest) == []
    assert not (tmp_path / "a" / "evil.txt").exists()


def test_link_then_write_through_it_is_stopped(tmp_path):
    # "d" -> "." is harmless on its own; a later member may not climb out through a link that
    # already exists in the destination either.
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(outside, dest / "escape")
    archive = _tar(tmp_path / "t.tar", [("escape/evil.txt", b"pwned", "file")])
    with pytest.raises(UnsafeArchiveError, match="through a link"):
        safe_extract(archive, dest)
    assert list(outside.iterdir()) == []


def test_include_filter_and_not_an_archive(tmp_path):
    archive = _zip(tmp_path / "ok.zip", GOOD)
    dest = tmp_path / "out"
    safe_extract(archive, dest, include=lambda n: n.startswith("data/high/"))
    assert _files_under(dest) == ["data", "data/high", "data/high/1.png"]
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(Exception, match="neither a zip nor a tar"):
        safe_extract(junk, dest)
