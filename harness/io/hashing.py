"""File hashing shared by manifests, downloads, weights and studies."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CACHED: dict[tuple[str, int, int], str] = {}


def sha256_file_cached(path: str | Path) -> str:
    """:func:`sha256_file`, remembered in this process while the file keeps its path, size and
    modification time (for weight files hashed into keys on every run)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _CACHED:
        _CACHED[key] = sha256_file(p)
    return _CACHED[key]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
