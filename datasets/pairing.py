"""Pairing and keying images by stem: low/high folder names, :func:`pair_folder`, stem keys."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from llbench.api.datasets import Sample, image_files, natural_key, pair_by_stem
from llbench.errors import DatasetError

LOW_NAMES = ("low", "Low", "LOW", "input", "Input", "lq", "LQ")
HIGH_NAMES = ("high", "High", "HIGH", "normal", "Normal", "gt", "GT", "target", "Target")


def unique_by_stem(files: Sequence[Path], where: str = "") -> list[Sample]:
    """Unpaired samples keyed by stem; :class:`DatasetError` lists every clash (``1.jpg``/``1.png``)."""
    seen: dict[str, list[Path]] = {}
    for f in files:
        seen.setdefault(f.stem, []).append(f)
    clashes = {k: v for k, v in seen.items() if len(v) > 1}
    if clashes:
        listed = "; ".join(" and ".join(str(p) for p in v) for v in list(clashes.values())[:10])
        more = f" (and {len(clashes) - 10} more)" if len(clashes) > 10 else ""
        raise DatasetError(
            f"files share a stem{' in ' + where if where else ''}, so their keys would clash: "
            f"{listed}{more}. Rename or remove one of each."
        )
    return [Sample(f.stem, f) for f in sorted(files, key=lambda p: natural_key(p.name))]


def first_existing(base: Path, names: Iterable[str]) -> Path | None:
    for n in names:
        if (base / n).is_dir():
            return base / n
    return None


def pair_folder(
    folder: Path,
    where: str,
    low_names: Sequence[str] = LOW_NAMES,
    high_names: Sequence[str] = HIGH_NAMES,
    key: Callable[[Path], str] | None = None,
    prefix: str = "",
) -> list[Sample]:
    """Pair ``folder/<low>`` with ``folder/<high>`` by stem (first existing folder names win)."""
    if not folder.is_dir():
        raise DatasetError(f"missing folder {folder}")
    low = first_existing(folder, low_names)
    high = first_existing(folder, high_names)
    if low is None or high is None:
        missing = [
            f"{folder}/{names[0]}"
            for d, names in ((low, low_names), (high, high_names))
            if d is None
        ]
        raise DatasetError(f"missing folder {' and '.join(missing)}")
    samples = pair_by_stem(image_files(low), image_files(high), where, key=key)
    if not samples:
        raise DatasetError(f"no images in {low}")
    if prefix:
        samples = [Sample(f"{prefix}{s.key}", s.low, s.high, s.mask) for s in samples]
    return samples


def strip_prefix_key(*prefixes: str) -> Callable[[Path], str]:
    """A pairing key that drops a leading ``low``/``normal``-style prefix from the stem."""
    pattern = re.compile(rf"^(?:{'|'.join(re.escape(p) for p in prefixes)})", re.IGNORECASE)

    def key(path: Path) -> str:
        return pattern.sub("", path.stem)

    return key
