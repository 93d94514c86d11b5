"""The members of a zip or tar archive, listed and checked before anything is extracted.

Used by :func:`llbench.io.extract.safe_extract`: names are normalised and refused when absolute
or climbing out with ``..``; symbolic and hard links must stay inside the destination, also
through the archive's other links; device files and FIFOs are refused. Every refusal raises
:class:`UnsafeArchiveError` naming the member.
"""

from __future__ import annotations

import posixpath
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llbench.errors import LLBenchError


class UnsafeArchiveError(LLBenchError):
    """An archive member that would be written outside the destination folder."""


@dataclass(frozen=True)
class _Member:
    name: str  # normalized relative POSIX path
    kind: str  # "file", "dir", "symlink", "hardlink"
    link: str = ""  # symlink target (as stored) or hardlink source (normalized archive path)
    mode: int = 0o644
    handle: object = None
    size: int = 0  # declared uncompressed size (files)


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
