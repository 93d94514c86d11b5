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
    ArchiveTooLargeError,
    ChecksumError,
    DownloadError,
    ExtractLimits,
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
    if not folder.exists():
        return []
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


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_link_chain_cannot_redirect_a_file_write_outside(tmp_path, fmt):
    # The chain used to carry a file member's bytes out: "x -> y/z/../.." is the destination's
    # parent once "y -> ." exists, so "x/outside/victim" is the victim. An extractor that checks
    # each link on its own (or none, like tarfile's "fully_trusted" filter) overwrites it.
    victim = _victim(tmp_path)
    entries = [
        ("x", "y/z/../..", "symlink"),
        ("y", ".", "symlink"),
        ("z/", b"", "dir"),
        ("x/outside/victim", b"PWNED", "file"),
    ]
    make = _tar if fmt == "tar" else _zip
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(make(tmp_path / f"t.{fmt}", entries), dest)
    assert victim.read_bytes() == b"original"
    assert not dest.exists()  # nothing written, and the folder it made is gone again


def test_files_are_never_written_through_a_link_already_in_the_folder(tmp_path, monkeypatch):
    # Links already in the folder, at every name the extractor may open for the member's bytes:
    # the member's own name, the temporary name extraction used before (".a.<pid>.part"), and
    # the first name mkstemp will try (made predictable here). An extractor that opens any of
    # them for writing without O_EXCL (or writes the member in place) sends the bytes to the
    # victim; a fresh exclusive file skips the taken name and the link is replaced, not followed.
    import tempfile

    victim = _victim(tmp_path)
    dest = tmp_path / "out"
    dest.mkdir()
    names = iter(["taken", "fresh"] + [f"n{i}" for i in range(100)])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    for planted in ("a", f".a.{os.getpid()}.part", ".llbench-taken.part"):
        os.symlink(victim, dest / planted)
    safe_extract(_tar(tmp_path / "t.tar", [("a", b"new bytes", "file")]), dest)
    assert victim.read_bytes() == b"original"
    assert (dest / "a").read_bytes() == b"new bytes" and not (dest / "a").is_symlink()
    assert (dest / ".llbench-taken.part").is_symlink()  # the taken name was skipped, not used
    assert not (dest / ".llbench-fresh.part").exists()  # the fresh one became "a"


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
    raw[i : i + 5] = b"\x00" * 5  # corrupt the stored bytes: the CRC no longer matches
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


# -- archive bombs and clean-up after a refusal (issue 20, defect 1) ---------------------------
MIB = 1 << 20


class _Zeros(io.RawIOBase):
    """``n`` zero bytes, read in pieces: a bomb's payload without holding it in memory."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        k = min(len(buf), self.left)
        buf[:k] = bytes(k)
        self.left -= k
        return k


def _zip_bomb(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("data/low/1.png", "w", force_zip64=True) as out:
            for _ in range(size // MIB):
                out.write(bytes(MIB))
    return path


def _tgz_bomb(path: Path, size: int, links: int = 0) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("data/low/1.png")
        info.size = size
        tf.addfile(info, _Zeros(size))
        for i in range(links):  # each hard link is written as a copy of the file
            link = tarfile.TarInfo(f"data/low/{i}.png")
            link.type, link.linkname = tarfile.LNKTYPE, "data/low/1.png"
            tf.addfile(link)
    return path


def test_default_limits_fit_the_real_datasets():
    limits = ExtractLimits()
    voc = 1_999_639_040  # VOCtrainval_11-May-2012.tar: ~40,000 members, unpacks to its size
    assert limits.allowed_bytes(voc) >= 1.5 * voc and limits.allowed_entries(voc) >= 50_000
    lime_like = 30 * MIB  # a zip of dark BMPs, compressed about 4 to 1
    assert limits.allowed_bytes(lime_like) >= 10 * lime_like
    bomb = 2 * MIB  # the 2 MiB zip: at most 200 MiB (ratio 100), 10,000 members
    assert limits.allowed_bytes(bomb) == 200 * MIB and limits.allowed_entries(bomb) == 10_000
    assert limits.allowed_bytes(1024) == 64 * MIB  # any archive may unpack to 64 MiB


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_compression_bomb_is_refused_before_anything_is_written(tmp_path, kind):
    # 80 MiB of zeros packs into ~80 KiB: a ratio of about 1000 (the 1.5 MiB zip wrote
    # 1.5 GiB). The default limits refuse it while listing, before a byte reaches the disk.
    size = 80 * MIB
    make = _zip_bomb if kind == "zip" else _tgz_bomb
    archive = make(tmp_path / f"bomb.{kind}", size)
    assert archive.stat().st_size < size / 200
    dest = tmp_path / "data" / "npe"
    with pytest.raises(ArchiveTooLargeError, match="LLBENCH_EXTRACT_MAX_RATIO") as err:
        safe_extract(archive, dest)
    assert "compression ratio 100" in str(err.value)
    assert not (tmp_path / "data").exists()  # the folders it made are gone too


def test_hard_links_count_as_the_copies_they_become(tmp_path):
    # One 1 MiB file and 100 hard links to it: a 3 KiB tar.gz that writes 101 MiB of copies.
    archive = _tgz_bomb(tmp_path / "links.tar.gz", MIB, links=100)
    dest = tmp_path / "out"
    with pytest.raises(
        ArchiveTooLargeError, match=r"would unpack to over 65\.0 MiB, more than the 64\.0 MiB"
    ):
        safe_extract(archive, dest)
    assert not dest.exists()


def test_many_entries_bomb_is_refused(tmp_path):
    # The 2 MiB zip wrote 20,001 entries; 10,001 empty ones in a ~1 MiB zip are enough
    # to pass the 10,000 a small archive may list.
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(10_001):
            zf.writestr(f"d/{i}.png", b"")
    assert archive.stat().st_size < 2 * MIB
    dest = tmp_path / "out"
    with pytest.raises(ArchiveTooLargeError, match="over 10,000 members"):
        safe_extract(archive, dest)
    assert not dest.exists()
    # a limit of one's own, and an explicit opt-out
    small = _zip(tmp_path / "three.zip", GOOD)
    with pytest.raises(ArchiveTooLargeError, match="LLBENCH_EXTRACT_MAX_ENTRIES"):
        safe_extract(small, dest, limits=ExtractLimits(max_entries=3))
    assert not dest.exists()
    assert len(safe_extract(small, dest, limits=ExtractLimits(max_entries=4))) == 3


def test_limits_from_the_environment(tmp_path, monkeypatch):
    payload_zip = tmp_path / "p.zip"
    with zipfile.ZipFile(payload_zip, "w") as zf:
        zf.writestr("a.png", os.urandom(3 * MIB))  # incompressible: ratio 1
    monkeypatch.setenv("LLBENCH_EXTRACT_MAX_BYTES", "2M")
    with pytest.raises(ArchiveTooLargeError, match="LLBENCH_EXTRACT_MAX_BYTES"):
        safe_extract(payload_zip, tmp_path / "o")
    assert ExtractLimits.from_env().max_bytes == 2 * MIB
    monkeypatch.setenv("LLBENCH_EXTRACT_MAX_BYTES", "inf")
    monkeypatch.setenv("LLBENCH_EXTRACT_MAX_RATIO", "2.5")
    assert ExtractLimits.from_env().max_ratio == 2.5
    assert safe_extract(payload_zip, tmp_path / "o") == [tmp_path / "o" / "a.png"]
    from llbench.errors import ConfigError

    monkeypatch.setenv("LLBENCH_EXTRACT_MAX_ENTRIES", "lots")
    with pytest.raises(ConfigError, match="LLBENCH_EXTRACT_MAX_ENTRIES='lots'"):
        safe_extract(payload_zip, tmp_path / "o")


def test_writing_stops_within_a_chunk_of_the_limit(tmp_path, monkeypatch):
    # Should the declared sizes be wrong, the bytes written are counted too: with the listing
    # check switched off, a 16 MiB member against a 1 MiB limit stops after 1 MiB + one chunk.
    from llbench.io import extract as dl

    monkeypatch.setattr(dl._Budget, "declare", lambda self, n: None)
    seen = []
    real_write = dl._Budget.write

    def write(self, n):
        seen.append(self.written + n)
        real_write(self, n)

    monkeypatch.setattr(dl._Budget, "write", write)
    archive = _tar(tmp_path / "t.tar", [("first.png", b"1", "file")])
    with tarfile.open(archive, "a") as tf:
        info = tarfile.TarInfo("big.png")
        info.size = 16 * MIB
        tf.addfile(info, _Zeros(info.size))
    dest = tmp_path / "out"
    with pytest.raises(ArchiveTooLargeError, match="unpacked to over"):
        safe_extract(archive, dest, limits=ExtractLimits(max_bytes=MIB, small_bytes=0))
    assert max(seen) <= MIB + dl.CHUNK
    assert not dest.exists()  # "first.png", the partial temporary file and the folder: gone


def test_refusals_mid_way_remove_what_was_written(tmp_path):
    # These refusals come after earlier members were written; they used to stay on disk.
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "mine.txt").write_bytes(b"kept")  # not the archive's: it stays
    os.symlink(outside, dest / "escape")
    archive = _tar(
        tmp_path / "t.tar",
        [("data/ok.png", b"x", "file"), ("escape/evil.txt", b"pwned", "file")],
    )
    with pytest.raises(UnsafeArchiveError, match="through a link"):
        safe_extract(archive, dest)
    assert _files_under(dest) == ["escape", "mine.txt"] and list(outside.iterdir()) == []
    # a damaged second member: the first one is removed as well
    good = _zip(tmp_path / "c.zip", [("a.png", b"fine", "file"), ("b.png", b"hello" * 200, "file")])
    raw = bytearray(good.read_bytes())
    i = raw.find(b"hellohello")
    raw[i : i + 5] = b"\x00" * 5  # corrupt the stored bytes: the CRC no longer matches
    good.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="damaged"):
        safe_extract(good, tmp_path / "o2" / "deep")
    assert not (tmp_path / "o2").exists()


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
    # the folders it created for the destination are removed again (an empty "a" was left)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "t.tar"]


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
