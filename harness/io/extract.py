"""Archive extraction that cannot escape its folder and refuses archive bombs.

:func:`safe_extract` unpacks zip and tar (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``,
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
it created. (Split out of :mod:`llbench.io.download`, which re-exports these names.)
"""

from __future__ import annotations

import lzma
import math
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from llbench.errors import ConfigError, LLBenchError

CHUNK = 1 << 16


class UnsafeArchiveError(LLBenchError):
    """An archive member that would be written outside the destination folder."""


# -- download ------------------------------------------------------------------------------------
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
