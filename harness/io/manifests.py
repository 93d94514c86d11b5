"""Manifests: which files a dataset split holds and their sha256, and the hashes built on them.

One implementation serves every use: a dataset's recorded manifest (``llbench datasets
verify``), a split's manifest hash in a run's key and provenance, and training keys. Hashes of
unchanged files (same size and modification time) are reused from a small JSON cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llbench.io.hashing import sha256_file


def file_manifest(
    root: Path, files: Iterable[Path], cache_path: Path | None = None
) -> dict[str, str]:
    """Hash files relative to ``root``, reusing hashes cached (by size and mtime) in
    ``cache_path`` (default ``root/.llbench-hashes.json``)."""
    root = Path(root)
    cache_path = Path(cache_path) if cache_path else root / ".llbench-hashes.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    out, changed = {}, False
    for f in files:
        f = Path(f)
        rel = os.path.relpath(f, root)
        st = f.stat()
        sig = f"{st.st_size}:{st.st_mtime_ns}"
        hit = cache.get(rel)
        if hit and hit[0] == sig:
            digest = hit[1]
        else:
            digest = sha256_file(f)
            cache[rel] = [sig, digest]
            changed = True
        out[rel] = digest
    if changed:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache))
            tmp.replace(cache_path)
        except OSError:
            pass  # read-only data folders still work, just without the cache
    return dict(sorted(out.items()))


def hash_manifest(manifest: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def samples_manifest_hash(root: Path, samples: Sequence[Any], home: Path) -> str:
    """The hash identifying a list of samples: their keys and every file's content (low,
    high, mask), with file hashes cached under ``<home>/cache/hashes/``. This is the dataset part
    of run and training keys."""
    files = [p for s in samples for p in (s.low, s.high, s.mask) if p is not None]
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    cache = Path(home) / "cache" / "hashes" / f"{digest}.json"
    manifest = file_manifest(root, files, cache)
    payload = {"keys": [s.key for s in samples], "files": manifest}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
