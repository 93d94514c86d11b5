"""Downloads that resume and verify, and archive extraction that cannot escape its folder.

* :func:`download` fetches a URL into a file. Bytes go to ``<dest>.part`` first; a later call
  resumes it with an HTTP ``Range`` request (a server that ignores the range restarts it). The
  finished file is checked against its sha256 before it takes its final name, so a file at
  ``dest`` is always complete. Without a network it fails at once with :class:`DownloadError`,
  whose message says which file to fetch by hand and where to put it. ``LLBENCH_OFFLINE=1``
  makes every download fail that way without trying.
* :func:`safe_extract` unpacks zip and tar (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``,
  ``.tar.xz``) archives. Every member is checked before anything is written: absolute paths,
  ``..`` components, symbolic and hard links that resolve outside the destination (also through
  the archive's other links), link loops, names shared by a link and another member, and device
  files or FIFOs are refused with :class:`UnsafeArchiveError` naming the member. Hard links are
  written as copies; file modes keep only the permission bits. Files are written through fresh
  temporary files (never through an existing link), and every link written is checked again on
  disk at the end. A damaged archive raises :class:`~llbench.errors.LLBenchError`.
  Archive bombs are refused with :class:`ArchiveTooLargeError`: the entry count, the total size
  unpacked and the compression ratio are bounded (:class:`ExtractLimits`, sized from the real
  datasets and overridable), the declared sizes while listing, the bytes written while writing.
  An extraction that stops, for this or any other reason, removes every file, link and folder
  it created.
* :func:`fetch_weights` resolves a method's released weights (:class:`~llbench.api.specs.WeightsRef`)
  to a verified local file, downloading it when absent (``--weights official``).
"""

from __future__ import annotations

import http.client
import lzma
import math
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from llbench import __version__
from llbench.api.specs import WeightsRef
from llbench.errors import ConfigError, LLBenchError, WeightsError
from llbench.io.hashing import sha256_file

CHUNK = 1 << 16
USER_AGENT = f"llbench/{__version__} (+https://github.com/llbench/llbench)"


class DownloadError(LLBenchError):
    """A download that failed (offline, HTTP error, interrupted); the message says what to do."""


class ChecksumError(DownloadError):
    """A downloaded or cached file whose sha256 is not the published one."""


class UnsafeArchiveError(LLBenchError):
    """An archive member that would be written outside the destination folder."""


# -- download ------------------------------------------------------------------------------------
def offline() -> bool:
    """True when ``LLBENCH_OFFLINE`` asks llbench not to touch the network."""
    return os.environ.get("LLBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def manual_download_steps(url: str, dest: Path, sha256: str | None = None) -> str:
    """The by-hand instructions that every download error carries."""
    check = f" Its sha256 must be {sha256}." if sha256 else ""
    return (
        f"To do it by hand: download {url} with a browser or `curl -L -C - -o {dest} {url}`, "
        f"and place the file at {dest}.{check} Then run the same command again."
    )


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    *,
    progress: bool = True,
    timeout: float = 10.0,
    manual: str = "",
) -> Path:
    """Download ``url`` to ``dest`` (a file path, or a folder to put the URL's file name in).

    Resumes ``<dest>.part`` left by an interrupted call, verifies ``sha256`` when given, and
    returns the final path. A file already at ``dest`` is reused after its hash is checked.
    ``timeout`` bounds the connection and each read (seconds). ``manual`` is appended to error
    messages (e.g. a dataset's page and layout). Raises :class:`DownloadError` (offline, HTTP
    error, interrupted: the partial file is kept for the next call) or :class:`ChecksumError`.
    """
    as_folder = isinstance(dest, str) and dest.endswith(("/", os.sep))
    dest = Path(dest)
    if as_folder or dest.is_dir():
        name = posixpath.basename(urllib.parse.urlparse(url).path)
        if name in ("", ".", ".."):
            name = "download"
        dest = dest / name
    sha256 = sha256.lower() if sha256 else None
    steps = manual_download_steps(url, dest, sha256) + (f" {manual}" if manual else "")

    if dest.is_file():
        if sha256 is None or sha256_file(dest) == sha256:
            return dest
        raise ChecksumError(
            f"{dest} exists but its sha256 is {sha256_file(dest)}, not {sha256}: it is a different or "
            f"damaged file. Delete it and run again. {steps}"
        )
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DownloadError(
            f"cannot download {url!r}: only http, https and file URLs are supported"
        )
    if offline():
        raise DownloadError(f"not downloading {url}: LLBENCH_OFFLINE is set. {steps}")

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch_to_part(url, part, timeout=timeout, progress=progress, steps=steps)
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}. The "
                f"download was deleted; the file on the server may have changed. {steps}"
            )
    os.replace(part, dest)
    return dest


def _fetch_to_part(url: str, part: Path, *, timeout: float, progress: bool, steps: str) -> None:
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.build_opener(_SafeRedirects).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            total = _content_range_total(exc.headers.get("Content-Range", ""))
            exc.close()
            if total is not None and total == have:
                return  # the partial file is already complete
            part.unlink(missing_ok=True)  # stale partial file: start over next time
            raise DownloadError(
                f"the server refused to resume {url} (HTTP 416); the partial file was "
                f"removed, run again to start over. {steps}"
            ) from None
        exc.close()
        raise DownloadError(
            f"could not download {url}: HTTP {exc.code} {exc.reason}. {steps}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not download {url}: {reason} (offline, or the host is unreachable). {steps}"
        ) from None

    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        if have and status == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != have:  # never splice bytes from the wrong offset
                part.unlink(missing_ok=True)
                raise DownloadError(
                    f"{url} answered a resume request from byte {have} with a range starting at "
                    f"{start}; the partial file was removed, run again to start over. {steps}"
                )
            mode = "ab"
        else:
            mode, have = "wb", 0  # no partial file, or the server ignored the range
        total = have + remaining if remaining is not None else None
        with open(part, mode) as out, _ProgressBar(part.name, total, have, progress) as bar:
            try:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    bar.advance(len(block))
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                out.flush()
                raise DownloadError(
                    f"download of {url} was interrupted after {out.tell()} bytes ({exc}); run "
                    f"the same command again to resume from {part}. {steps}"
                ) from None
            written = out.tell()
    if total is not None and written < total:
        raise DownloadError(
            f"download of {url} stopped at {written} of {total} bytes; run the same command "
            f"again to resume from {part}. {steps}"
        )


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only, and never from https down to plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old = urllib.parse.urlsplit(req.full_url).scheme.lower()
        new = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme.lower()
        if new not in ("http", "https") or (old == "https" and new == "http"):
            raise urllib.error.HTTPError(
                req.full_url, code, f"refused redirect from {old} to {newurl!r}", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _content_range_start(value: str) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)", value)
    return int(m.group(1)) if m else None


def _content_range_total(value: str) -> int | None:
    m = re.match(r"\s*bytes\s+(?:\*|\d+-\d+)/(\d+)", value)
    return int(m.group(1)) if m else None


class _ProgressBar:
    """A rich download bar on stderr (bytes, rate, ETA); silent when disabled."""

    def __init__(self, name: str, total: int | None, done: int, enabled: bool):
        self._progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task(name, total=total, completed=done)

    def __enter__(self) -> _ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


# -- extraction ----------------------------------------------------------------------------------
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


class ArchiveTooLargeError(UnsafeArchiveError):
    """An archive that would unpack to more bytes or entries than :class:`ExtractLimits` allow."""


@dataclass(frozen=True)
class ExtractLimits:
    """How much one archive may unpack to; past a bound, :func:`safe_extract` refuses it.

    The defaults are sized from the datasets llbench knows, whose archives hold images that are
    already compressed: the largest is VOC 2012's 2.0 GB tar (about 40,000 members, unpacking to
    about its own size), LOL, LSRW, SICE and the unpaired sets are zips of JPEG, PNG or BMP
    files with ratios between 1 and a few.

    * ``max_bytes``: total size of the files written (hard-link copies included), 16 GiB.
    * ``max_entries``: members listed in the archive (files, folders, links), 100,000.
    * ``max_ratio``: total size written per byte of archive, 100. Any archive may unpack to
      ``small_bytes`` (64 MiB) whatever its ratio, so small archives of text or bitmaps pass.
    * A small archive cannot hold many members either: past ``small_entries`` (10,000) members,
      each member needs ``entry_bytes`` (4 KiB, one file-system block) of archive. A 2 MiB zip
      therefore lists at most 10,000 members, VOC's tar up to the 100,000 of ``max_entries``.

    ``max_bytes``, ``max_entries`` and ``max_ratio`` can be set with the environment variables
    ``LLBENCH_EXTRACT_MAX_BYTES`` (a number of bytes, or with a K, M, G or T suffix),
    ``LLBENCH_EXTRACT_MAX_ENTRIES`` and ``LLBENCH_EXTRACT_MAX_RATIO`` (:meth:`from_env`), or by
    passing ``limits=`` to :func:`safe_extract`. ``inf`` or ``none`` switches a bound off.
    """

    max_bytes: float = 16 * GiB
    max_entries: float = 100_000
    max_ratio: float = 100.0
    small_bytes: int = 64 * MiB
    small_entries: int = 10_000
    entry_bytes: int = 4 * KiB

    @classmethod
    def from_env(cls, **overrides: float) -> ExtractLimits:
        """The defaults, with ``LLBENCH_EXTRACT_MAX_*`` applied, then ``overrides``."""
        values: dict[str, float] = {}
        for field, var in _LIMIT_VARS.items():
            raw = os.environ.get(var, "").strip()
            if raw:
                values[field] = _parse_limit(raw, var)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def allowed_bytes(self, archive_size: int) -> float:
        """The most bytes an archive of ``archive_size`` bytes may unpack to."""
        return min(self.max_bytes, max(self.small_bytes, self.max_ratio * archive_size))

    def allowed_entries(self, archive_size: int) -> float:
        """The most members an archive of ``archive_size`` bytes may list."""
        return min(self.max_entries, max(self.small_entries, archive_size // self.entry_bytes))


_LIMIT_VARS = {
    "max_bytes": "LLBENCH_EXTRACT_MAX_BYTES",
    "max_entries": "LLBENCH_EXTRACT_MAX_ENTRIES",
    "max_ratio": "LLBENCH_EXTRACT_MAX_RATIO",
}
_SUFFIX = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}


def _parse_limit(raw: str, var: str) -> float:
    text = raw.strip().upper().removesuffix("IB").removesuffix("B")
    if text in ("INF", "NONE", "OFF"):
        return math.inf
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([KMGT]?)", text)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(
            f"{var}={raw!r} is not a limit: use a positive number (bytes may end in K, M, G or "
            "T, e.g. 32G), or 'inf' to switch the bound off"
        )
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def _human(n: float) -> str:
    if math.isinf(n):
        return "unlimited"
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


class _Budget:
    """Counts entries and bytes against :class:`ExtractLimits` while listing and writing."""

    def __init__(self, limits: ExtractLimits, archive: Path):
        self.archive = archive
        self.limits = limits
        size = archive.stat().st_size
        self.size = size
        self.max_bytes = limits.allowed_bytes(size)
        self.max_entries = limits.allowed_entries(size)
        self.entries = 0
        self.declared = 0
        self.written = 0

    def _refuse(self, what: str, amount: str, limit: str, var: str) -> ArchiveTooLargeError:
        return ArchiveTooLargeError(
            f"{self.archive} ({_human(self.size)}) {what} {amount}, more than the {limit} allowed "
            f"for it (a zip or tar bomb, or a larger archive than llbench expects); stopped and "
            f"removed anything it had written. If the archive is genuine, raise the limit, e.g. "
            f"{var}=... (see llbench.io.download.ExtractLimits)"
        )

    def _bytes_limit(self) -> tuple[str, str]:
        if self.max_bytes == self.limits.max_bytes:
            return f"{_human(self.max_bytes)} limit", "LLBENCH_EXTRACT_MAX_BYTES"
        return (
            f"{_human(self.max_bytes)} (compression ratio {self.limits.max_ratio:g})",
            "LLBENCH_EXTRACT_MAX_RATIO",
        )

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            per = "" if self.max_entries == self.limits.max_entries else " at its size"
            raise self._refuse(
                "lists",
                f"over {int(self.max_entries):,} members",
                f"{int(self.max_entries):,}{per}",
                "LLBENCH_EXTRACT_MAX_ENTRIES",
            )

    def declare(self, nbytes: int) -> None:
        self.declared += nbytes
        if self.declared > self.max_bytes:
            limit, var = self._bytes_limit()
            raise self._refuse("would unpack to", f"over {_human(self.declared)}", limit, var)

    def write(self, nbytes: int) -> None:
        self.written += nbytes
        if self.written > self.max_bytes:
            limit, var = self._bytes_limit()
            raise self._refuse("unpacked to", f"over {_human(self.written)}", limit, var)


class _Undo:
    """What an extraction created, so that a refused or failed one leaves nothing behind."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.dirs: list[Path] = []

    def mkdirs(self, path: Path) -> None:
        """``path.mkdir(parents=True, exist_ok=True)``, remembering each folder it created."""
        missing = []
        p = path
        while not p.is_dir() and p != p.parent:
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                if not d.is_dir():
                    raise
                continue
            self.dirs.append(d)

    def rollback(self) -> None:
        for f in reversed(self.files):
            try:
                if f.is_symlink() or f.is_file():
                    f.unlink()
            except OSError:
                pass
        for d in reversed(self.dirs):
            try:
                d.rmdir()
            except OSError:
                pass  # not empty: something not ours is in it


@dataclass(frozen=True)
class _Member:
    name: str  # normalized relative POSIX path
    kind: str  # "file", "dir", "symlink", "hardlink"
    link: str = ""  # symlink target (as stored) or hardlink source (normalized archive path)
    mode: int = 0o644
    handle: object = None
    size: int = 0  # declared uncompressed size (files)


def safe_extract(
    archive: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    include: Callable[[str], bool] | None = None,
    limits: ExtractLimits | None = None,
) -> list[Path]:
    """Extract a zip or tar archive into ``dest``; return the files written.

    Every member is validated first (see the module docstring); one unsafe member rejects the
    whole archive before anything is written. ``include(name)`` (a relative POSIX path) selects
    members to extract, e.g. only the folders a dataset needs from a large archive. ``limits``
    bounds what the archive may unpack to (default: :meth:`ExtractLimits.from_env`); the
    declared sizes are checked while listing, the bytes actually written while writing. When
    extraction stops for any reason, every file, link and folder it created is removed.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise LLBenchError(f"archive not found: {archive}")
    budget = _Budget(limits if limits is not None else ExtractLimits.from_env(), archive)
    undo = _Undo()
    try:
        undo.mkdirs(dest)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = _listed(_zip_members(zf, archive), budget, include)
                _check_links(members, archive)
                return _extract(
                    members, dest, archive, include, lambda m: zf.open(m.handle), budget, undo
                )
        try:
            tf = tarfile.open(archive, "r:*")
        except (tarfile.TarError, OSError) as exc:
            raise LLBenchError(
                f"{archive} is neither a zip nor a tar archive (or it is damaged: {exc}); "
                "delete it and download it again"
            ) from exc
        with tf:
            members = _listed(_tar_members(tf, archive), budget, include)
            _check_links(members, archive)
            return _extract(
                members, dest, archive, include, lambda m: tf.extractfile(m.handle), budget, undo
            )
    except LLBenchError:
        undo.rollback()
        raise
    except _DAMAGED as exc:
        undo.rollback()
        raise LLBenchError(
            f"cannot extract {archive} into {dest}: {exc}. If the archive is damaged, delete it "
            "and download it again"
        ) from exc
    except BaseException:
        undo.rollback()
        raise


def _listed(
    found: Iterator[_Member], budget: _Budget, include: Callable[[str], bool] | None
) -> list[_Member]:
    """The members, counted against the limits as they are read (a bomb stops the listing)."""
    members: list[_Member] = []
    sizes: dict[str, int] = {}
    for m in found:
        budget.entry()
        if m.kind == "file":
            sizes[m.name] = m.size
        elif m.kind == "hardlink":  # written as a copy: it costs its source's size again
            sizes[m.name] = sizes.get(m.link, 0)
        if m.kind in ("file", "hardlink") and (include is None or include(m.name)):
            budget.declare(sizes[m.name])
        members.append(m)
    return members


# What a damaged archive or an unwritable member raises while reading or writing.
_DAMAGED = (
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
)


def _clean_name(raw: str, archive: Path) -> str:
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or name.startswith("//"):
        raise UnsafeArchiveError(f"{archive}: member {raw!r} has an absolute path; not extracting")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchiveError(f"{archive}: member {raw!r} climbs out with '..'; not extracting")
    return "/".join(parts)


def _check_link_target(name: str, target: str, archive: Path) -> str:
    """A symlink at ``name`` pointing to ``target`` must stay inside the destination.

    Returns the target with ``/`` separators: the link is written that way, so the checks here
    and in :func:`_check_links` see the same path components as the operating system.
    """
    if target.startswith("/") or target.startswith("\\") or re.match(r"^[A-Za-z]:", target):
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} links to the absolute path {target!r}; not extracting"
        )
    if not target or "\x00" in target:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an invalid link target")
    clean = target.replace("\\", "/")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), clean))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} links to {target!r}, outside the destination; not extracting"
        )
    return clean


MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit


def _check_links(members: list[_Member], archive: Path) -> None:
    """Resolve every symlink through the archive's other symlinks, before anything is written.

    Checking each link on its own is not enough: ``x -> y/z/../..`` stays inside on paper, but
    with ``y -> .`` from the same archive it points to the destination's parent. Here each
    target is walked component by component, following the archive's links (a name is a link
    exactly when a symlink member has it: a link may not share its name with another member).
    A link that leaves the destination or loops refuses the whole archive.
    """
    links: dict[str, str] = {}
    kinds: dict[str, set[tuple[str, str]]] = {}
    for m in members:
        kinds.setdefault(m.name, set()).add((m.kind, m.link if m.kind == "symlink" else ""))
        if m.kind == "symlink":
            links[m.name] = m.link
    for name in links:
        if len(kinds[name]) > 1:
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} is a link and also another member; not extracting"
            )
    for name, target in links.items():
        parts = name.split("/")[:-1]
        todo = list(reversed(target.split("/")))
        hops = 0
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise UnsafeArchiveError(
                        f"{archive}: member {name!r} links to {target!r}, which leads outside the "
                        "destination through the archive's other links; not extracting"
                    )
                parts.pop()
                continue
            parts.append(part)
            link = links.get("/".join(parts))
            if link is not None:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise UnsafeArchiveError(
                        f"{archive}: member {name!r} is part of a loop of links; not extracting"
                    )
                parts.pop()
                todo.extend(reversed(link.split("/")))


def _zip_members(zf: zipfile.ZipFile, archive: Path) -> Iterator[_Member]:
    for info in zf.infolist():
        name = _clean_name(info.filename, archive)
        if not name:
            continue
        unix_mode = (info.external_attr >> 16) & 0xFFFF
        if unix_mode and stat.S_ISLNK(unix_mode):
            target = zf.read(info).decode("utf-8", "surrogateescape")
            yield _Member(name, "symlink", _check_link_target(name, target, archive))
        elif info.is_dir():
            yield _Member(name, "dir")
        elif stat.S_IFMT(unix_mode) not in (0, stat.S_IFREG):  # 0: no type bits (DOS, writestr)
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} is not a regular file; not extracting"
            )
        else:
            yield _Member(
                name, "file", mode=_file_mode(unix_mode), handle=info, size=info.file_size
            )


def _tar_members(tf: tarfile.TarFile, archive: Path) -> Iterator[_Member]:
    for info in tf:
        name = _clean_name(info.name, archive)
        if not name:
            continue
        if info.issym():
            yield _Member(name, "symlink", _check_link_target(name, info.linkname, archive))
        elif info.islnk():
            src = info.linkname.replace("\\", "/")
            if src.startswith("/") or re.match(r"^[A-Za-z]:", src):
                raise UnsafeArchiveError(
                    f"{archive}: member {name!r} hard-links to the absolute path {info.linkname!r}; "
                    "not extracting"
                )
            src = posixpath.normpath(src)
            if src == ".." or src.startswith("../"):
                raise UnsafeArchiveError(
                    f"{archive}: member {name!r} hard-links to {info.linkname!r}, outside the "
                    "destination; not extracting"
                )
            yield _Member(name, "hardlink", src)
        elif info.isdir():
            yield _Member(name, "dir")
        elif info.isfile():
            yield _Member(name, "file", mode=_file_mode(info.mode), handle=info, size=info.size)
        else:
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} is a device, FIFO or other special file; not extracting"
            )


def _file_mode(mode: int) -> int:
    """Permission bits only (no setuid/setgid/sticky, no group/other write), at least rw-r--r--."""
    return (stat.S_IMODE(mode) & 0o755) | 0o644 if mode else 0o644


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _extract(
    members: list[_Member],
    dest: Path,
    archive: Path,
    include: Callable[[str], bool] | None,
    opener: Callable[[_Member], object],
    budget: _Budget,
    undo: _Undo,
) -> list[Path]:
    root = dest.resolve()
    written: list[Path] = []
    by_name = {m.name: m for m in members}
    for m in members:
        if include is not None and not include(m.name):
            continue
        target = root / m.name
        # Resolve the parent as it is now (links created by earlier members or already present
        # in the folder included): the member must land inside the destination.
        parent = target.parent.resolve()
        if not _inside(parent, root):
            raise UnsafeArchiveError(
                f"{archive}: member {m.name!r} would be written through a link to {parent}, "
                "outside the destination; stopped"
            )
        target = parent / target.name
        if m.kind == "dir":
            undo.mkdirs(target)
            continue
        undo.mkdirs(parent)
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()
        if m.kind == "symlink":
            resolved = (parent / m.link).resolve()
            if not _inside(resolved, root):
                raise UnsafeArchiveError(
                    f"{archive}: member {m.name!r} links to {m.link!r}, which resolves outside "
                    "the destination; stopped"
                )
            os.symlink(m.link, target)
            undo.files.append(target)
            written.append(target)
        elif m.kind == "hardlink":
            src_member = by_name.get(m.link)
            src = (root / m.link).resolve()
            if src_member is None or not _inside(src, root) or not src.is_file():
                raise UnsafeArchiveError(
                    f"{archive}: member {m.name!r} hard-links to {m.link!r}, which is not a file "
                    "extracted from this archive; stopped"
                )
            budget.write(src.stat().st_size)
            undo.files.append(target)
            shutil.copyfile(src, target)
            written.append(target)
        else:
            src = opener(m)
            if src is None:
                raise UnsafeArchiveError(f"{archive}: cannot read member {m.name!r}")
            # A fresh name (O_CREAT | O_EXCL): never opens a link the archive or anyone left.
            fd, tmp_name = tempfile.mkstemp(prefix=".llbench-", suffix=".part", dir=parent)
            tmp = Path(tmp_name)
            try:
                with src, os.fdopen(fd, "wb") as out:  # type: ignore[union-attr]
                    while block := src.read(CHUNK):  # type: ignore[union-attr]
                        budget.write(len(block))  # stops mid-file, not after
                        out.write(block)
                os.chmod(tmp, m.mode)
                os.replace(tmp, target)
                undo.files.append(target)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(target)
    # The checks above see the folder as it was at each step; look at the links once more as
    # they are now (later members, or links already in the folder, can change where they lead).
    escaping = [
        p for p in written if p.is_symlink() and not _inside(Path(os.path.realpath(p)), root)
    ]
    for p in escaping:
        p.unlink()
    if escaping:
        raise UnsafeArchiveError(
            f"{archive}: member {escaping[0].relative_to(root).as_posix()!r} became a link "
            "outside the destination; removed it and stopped"
        )
    return written


# -- released weights ----------------------------------------------------------------------------
def fetch_weights(ref: WeightsRef, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Return ``cache_dir/ref.filename``, downloading it from ``ref.url`` when absent.

    ``cache_dir`` is the folder for this method's weights (the runner passes
    ``<cache>/weights/<method>``). The file's sha256 must equal ``ref.sha256`` (when the
    reference gives one); a cached file that does not match raises :class:`WeightsError`.
    Offline, the :class:`DownloadError` says which file to place where.
    """
    cache_dir = Path(cache_dir)
    name = ref.filename
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise WeightsError(
            f"the released weights at {ref.url} name the file {name!r}; a plain file name is "
            f"needed (it is placed in {cache_dir})"
        )
    path = cache_dir / name
    expected = ref.sha256.lower() if ref.sha256 else None
    if path.is_file():
        if expected is None:
            return path
        actual = sha256_file(path)
        if actual != expected:
            raise WeightsError(
                f"{path} has sha256 {actual}, but the released weights have {expected}"
                f"{' (' + ref.source + ')' if ref.source else ''}. Delete the file and run again, "
                f"or download {ref.url} by hand and put it there."
            )
        return path
    source = f" Published at: {ref.source}." if ref.source else ""
    return download(ref.url, path, expected, progress=progress, manual=source.strip())
