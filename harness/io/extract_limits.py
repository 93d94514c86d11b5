"""How much one archive may unpack to: :class:`ExtractLimits`, their parsing from the
environment, and the budget that counts entries and bytes against them while extracting."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from llbench.errors import ConfigError
from llbench.io.extract_members import UnsafeArchiveError

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
