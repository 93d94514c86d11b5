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
import urllib.error
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llbench.api.specs import WeightsRef
from llbench.errors import WeightsError
from llbench.io.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download,
    fetch_weights,
    safe_extract,
)


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
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
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


# -- attacks found in review: each of these escaped or misbehaved before the fix --------------
def _victim(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    victim = outside / "victim"
    victim.write_bytes(b"original")
    return victim


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_link_chain_through_another_archive_link_is_refused(tmp_path, fmt):
    # "x -> y/z/../.." is inside on paper; with "y -> ." from the same archive it is the
    # destination's parent. Written before "y", it passed every check and stayed on disk.
    entries = [("x", "y/z/../..", "symlink"), ("y", ".", "symlink"), ("z/", b"", "dir")]
    make = _tar if fmt == "tar" else _zip
    archive = make(tmp_path / f"chain.{fmt}", entries)
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="other links"):
        safe_extract(archive, dest)
    assert _files_under(dest) == []


def test_link_chain_cannot_redirect_a_file_write_outside(tmp_path):
    # The same chain aimed at the temporary name the extractor used for a file member
    # (".<name>.<pid>.part"): the file's bytes landed in a file outside the destination.
    victim = _victim(tmp_path)
    entries = [
        (f".a.{os.getpid()}.part", "y/z/../../outside/victim", "symlink"),
        ("y", ".", "symlink"),
        ("z/", b"", "dir"),
        ("a", b"PWNED", "file"),
    ]
    with pytest.raises(UnsafeArchiveError):
        safe_extract(_tar(tmp_path / "t.tar", entries), tmp_path / "out")
    assert victim.read_bytes() == b"original"


def test_files_are_never_written_through_a_link_already_in_the_folder(tmp_path):
    # Any link already in the folder (here one on the temporary name) must not receive the data.
    victim = _victim(tmp_path)
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(victim, dest / f".a.{os.getpid()}.part")
    safe_extract(_tar(tmp_path / "t.tar", [("a", b"new bytes", "file")]), dest)
    assert victim.read_bytes() == b"original"
    assert (dest / "a").read_bytes() == b"new bytes" and not (dest / "a").is_symlink()


def test_link_led_outside_by_a_link_already_in_the_folder_is_removed(tmp_path):
    # A dangling "y -> q" left in the folder earlier: "x -> y/z/../.." resolves inside when it is
    # created, and "q -> ." (harmless alone) then turns it into a link to the parent.
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink("q", dest / "y")
    entries = [("x", "y/z/../..", "symlink"), ("q", ".", "symlink"), ("z/", b"", "dir")]
    with pytest.raises(UnsafeArchiveError, match="became a link outside"):
        safe_extract(_tar(tmp_path / "t.tar", entries), dest)
    assert not (dest / "x").is_symlink()
    assert all(
        os.path.realpath(p).startswith(str(dest.resolve()))
        for p in dest.rglob("*")
        if p.is_symlink()
    )


@pytest.mark.parametrize(
    "entries",
    [
        [("a", "b", "symlink"), ("b", "a", "symlink")],  # a loop
        [("a", "a", "symlink"), ("a/x", b"1", "file")],  # a self loop written through
        [("a", ".", "symlink"), ("a/", b"", "dir")],  # a link and a directory with one name
        [("a", b"1", "file"), ("a", "sub", "symlink")],  # a file replaced by a link
    ],
    ids=["loop", "self-loop", "link-and-dir", "file-then-link"],
)
def test_link_loops_and_names_shared_with_links_are_refused(tmp_path, entries):
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(_tar(tmp_path / "t.tar", entries), dest)
    assert _files_under(dest) == []


def test_damaged_archive_or_unwritable_member_raises_llbench_error_and_leaves_no_temp(tmp_path):
    from llbench.errors import LLBenchError

    archive = _zip(tmp_path / "c.zip", [("a", b"hello" * 200, "file")])
    raw = bytearray(archive.read_bytes())
    i = raw.find(b"hellohello")
    raw[i : i + 5] = b"XXXXX"  # the CRC no longer matches
    archive.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    with pytest.raises(LLBenchError, match="damaged"):
        safe_extract(archive, dest)
    assert _files_under(dest) == []  # no ".a.<pid>.part" left behind
    # a name too long for the file system: an LLBenchError, not a bare OSError
    with pytest.raises(LLBenchError, match="too long"):
        safe_extract(_tar(tmp_path / "long.tar", [("a" * 300, b"x", "file")]), dest)
    assert _files_under(dest) == []


def test_redirects_stay_on_http(server, tmp_path):
    from llbench.io.download import _SafeRedirects

    class Redirects(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(302)
            self.send_header("Location", {"/ftp": f"ftp://127.0.0.1:{port}/x"}.get(self.path, "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()

    with socket.socket() as ftp:  # the ftp "server": it must never see a connection
        ftp.bind(("127.0.0.1", 0))
        ftp.listen(1)
        ftp.settimeout(0.2)
        port = ftp.getsockname()[1]
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirects)
        th = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
        th.start()
        try:
            base = f"http://127.0.0.1:{httpd.server_address[1]}"
            with pytest.raises(DownloadError, match="refused redirect"):
                download(base + "/ftp", tmp_path / "f", progress=False, timeout=2)
            with pytest.raises(TimeoutError):
                ftp.accept()
        finally:
            httpd.shutdown()
            httpd.server_close()
            th.join(timeout=5)
    # https -> http would drop the transport's integrity; http(s) -> https is fine
    handler = _SafeRedirects()
    req = urllib.request.Request("https://example.org/a")
    with pytest.raises(urllib.error.HTTPError, match="refused redirect"):
        handler.redirect_request(req, None, 302, "Found", {}, "http://example.org/b")
    assert handler.redirect_request(req, None, 302, "Found", {}, "https://mirror.org/b") is not None


def test_url_without_a_usable_file_name_goes_to_download(server, tmp_path):
    server.files["/.."] = b"dotdot"
    folder = tmp_path / "dl"
    out = download(server.base + "/..", f"{folder}/", progress=False)
    assert out == folder / "download" and out.read_bytes() == b"dotdot"


@pytest.mark.parametrize("name", ["../../escaped.bin", "/tmp/abs.bin", "..", "a\\..\\b", ""])
def test_fetch_weights_needs_a_plain_file_name(server, tmp_path, name):
    server.files["/w"] = b"weights"
    ref = WeightsRef(url=server.url("/w"), sha256=None, filename=name)
    cache = tmp_path / "cache" / "weights" / "m"
    with pytest.raises(WeightsError, match="plain file name"):
        fetch_weights(ref, cache, progress=False)
    assert server.requests == []
    assert _files_under(tmp_path) == []


# -- attacks that held: kept as tests ---------------------------------------------------------
@pytest.mark.parametrize(
    "entries",
    [
        [("C:evil.txt", b"x", "file")],  # drive-relative
        [("\\\\server\\share\\evil.txt", b"x", "file")],  # UNC
        [("a\\..\\..\\evil.txt", b"x", "file")],  # backslash climb
        [("x" * 120 + "/" + "y" * 120 + "/../../../evil.txt", b"x", "file")],  # PAX path
        [("fifo", b"", "fifo")],
        [("link", "..\\..\\outside", "symlink")],
        [("pw", "a/../../outside/victim", "hardlink")],
    ],
    ids=["drive", "unc", "backslash", "pax", "fifo", "backslash-link", "hardlink-climb"],
)
def test_more_hostile_tar_members_are_refused(tmp_path, entries):
    victim = _victim(tmp_path)
    archive = tmp_path / "t.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"fifo": tarfile.FIFOTYPE, "symlink": tarfile.SYMTYPE}.get(
                kind, tarfile.LNKTYPE
            )
            info.linkname = data if isinstance(data, str) else ""
            tf.addfile(info)
    dest = tmp_path / "a" / "out"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest)
    assert _files_under(dest) == [] and victim.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "outside", "t.tar"]


def test_zip_special_members_and_harmless_oddities(tmp_path):
    # a FIFO, and a "directory" without the trailing slash, are refused
    for mode in (stat.S_IFIFO | 0o644, stat.S_IFDIR | 0o755):
        archive = tmp_path / "s.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            info = zipfile.ZipInfo("thing.png")
            info.external_attr = mode << 16
            zf.writestr(info, b"")
        with pytest.raises(UnsafeArchiveError, match="not a regular file"):
            safe_extract(archive, tmp_path / "o1")
    # a directory named like a file, duplicates (the last wins), hard-link chains: all inside
    archive = _zip(
        tmp_path / "ok.zip",
        [("img.png/", b"", "dir"), ("img.png/x", b"1", "file"), ("d", b"1", "file")],
    )
    with zipfile.ZipFile(archive, "a") as zf:
        with pytest.warns(UserWarning, match="Duplicate"):
            zf.writestr("d", b"2")
    dest = tmp_path / "o2"
    safe_extract(archive, dest)
    assert (dest / "img.png").is_dir() and (dest / "d").read_bytes() == b"2"
    chain = [("t", b"x", "file"), ("h1", "t", "hardlink"), ("h2", "h1", "hardlink")]
    safe_extract(_tar(tmp_path / "h.tar", chain), tmp_path / "o3")
    assert (tmp_path / "o3" / "h2").read_bytes() == b"x"


def test_existing_links_in_the_folder_are_replaced_not_followed(tmp_path):
    victim = _victim(tmp_path)
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(victim, dest / "file")  # a member with the link's name replaces the link
    os.symlink(victim.parent, dest / "escape")
    safe_extract(_tar(tmp_path / "a.tar", [("file", b"mine", "file")]), dest)
    assert victim.read_bytes() == b"original" and (dest / "file").read_bytes() == b"mine"
    for entries in (
        [("l", "escape/victim", "symlink")],  # a link through it
        [("h", "escape/victim", "hardlink")],  # a hard link through it
    ):
        with pytest.raises(UnsafeArchiveError):
            safe_extract(_tar(tmp_path / "b.tar", entries), dest)
    assert victim.read_bytes() == b"original" and list(victim.parent.iterdir()) == [victim]


def test_part_file_larger_than_the_remote_file_is_discarded(server, tmp_path):
    body = payload(10_000)
    server.files["/p.bin"] = body
    dest = tmp_path / "p.bin"
    part = tmp_path / "p.bin.part"
    part.write_bytes(payload(20_000, seed=4))
    with pytest.raises(DownloadError, match="HTTP 416"):
        download(server.url("/p.bin"), dest, sha(body), progress=False)
    assert not part.exists() and not dest.exists()
    assert download(server.url("/p.bin"), dest, sha(body), progress=False).read_bytes() == body
    # a server that ignores Range simply starts over, whatever the partial file holds
    server.ignore_range = True
    part2 = tmp_path / "q.bin.part"
    server.files["/q.bin"] = body
    part2.write_bytes(payload(20_000, seed=5))
    out = download(server.url("/q.bin"), tmp_path / "q.bin", sha(body), progress=False)
    assert out.read_bytes() == body


def test_wrong_partial_file_of_the_right_size_fails_the_checksum(server, tmp_path):
    body = payload(10_000)
    server.files["/r.bin"] = body
    (tmp_path / "r.bin.part").write_bytes(payload(10_000, seed=7))  # server answers 416: "done"
    with pytest.raises(ChecksumError):
        download(server.url("/r.bin"), tmp_path / "r.bin", sha(body), progress=False)
    assert not (tmp_path / "r.bin").exists() and not (tmp_path / "r.bin.part").exists()


def test_resume_follows_a_redirect_with_its_range(server, tmp_path):
    body = payload(50_000)
    server.files["/real.bin"] = body
    server.cut_after["/real.bin"] = 10_000

    class Moved(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(302)
            self.send_header("Location", server.url("/real.bin"))
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    th = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    th.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/moved.bin"
        dest = tmp_path / "moved.bin"
        with pytest.raises(DownloadError, match="resume"):
            download(url, dest, sha(body), progress=False, timeout=5)
        assert download(url, dest, sha(body), progress=False, timeout=5).read_bytes() == body
        assert server.requests[-1] == ("/real.bin", "bytes=10000-")
    finally:
        httpd.shutdown()
        httpd.server_close()
        th.join(timeout=5)
