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
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from llbench.errors import LLBenchError
from llbench.io.extract_limits import (
    ArchiveTooLargeError,
    ExtractLimits,
    GiB,
    KiB,
    MiB,
    _Budget,
)
from llbench.io.extract_members import (
    MAX_LINK_HOPS,
    UnsafeArchiveError,
    _check_links,
    _Member,
    _tar_members,
    _zip_members,
)

# The limits and member checks were defined here before the split; callers import them from here.
__all__ = [
    "CHUNK",
    "MAX_LINK_HOPS",
    "ArchiveTooLargeError",
    "ExtractLimits",
    "GiB",
    "KiB",
    "MiB",
    "UnsafeArchiveError",
    "safe_extract",
]

CHUNK = 1 << 16


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
