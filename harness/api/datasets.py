"""Base classes for datasets: samples, splits, pairing by file stem and manifests.

A dataset lists its samples per split. Paired data pairs low- and normal-light files by file
stem; anything unmatched is an error that names the files. A split's manifest (relative path ->
sha256) is hashed into every run's key and provenance, so results are tied to the exact files.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llbench.errors import DatasetError
from llbench.io.images import IMAGE_SUFFIXES
from llbench.io.manifests import file_manifest, hash_manifest


@dataclass(frozen=True)
class Sample:
    """One item of a split. ``key`` is unique within the split (normally the file stem)."""

    key: str
    low: Path
    high: Path | None = None
    mask: Path | None = None


@dataclass
class DatasetStatus:
    """Whether a dataset is usable here. ``state``: present, incomplete, unverified or absent."""

    state: str
    detail: str = ""
    splits: dict[str, int] = field(default_factory=dict)


class Dataset(abc.ABC):
    """A dataset rooted in a folder under the data root."""

    name: str = ""
    paired: bool = True
    splits: tuple[str, ...] = ("train", "test")

    def __init__(self, root: Path):
        self.root = Path(root)

    @abc.abstractmethod
    def samples(self, split: str) -> list[Sample]:
        """The samples of ``split``; raise :class:`DatasetError` saying what is missing."""

    def prepare(self) -> None:
        """Make the data ready to read (generated datasets write themselves here)."""
        return None

    def has_split(self, split: str) -> bool:
        try:
            return bool(self.samples(split))
        except DatasetError:
            return False

    def status(self) -> DatasetStatus:
        counts, missing = {}, []
        for split in self.splits:
            try:
                counts[split] = len(self.samples(split))
            except DatasetError as exc:
                missing.append(f"{split}: {exc}")
        if not counts:
            return DatasetStatus("absent", "; ".join(missing))
        if missing:
            return DatasetStatus("incomplete", "; ".join(missing), counts)
        return DatasetStatus("present", "", counts)

    def files(self, split: str) -> list[Path]:
        out: list[Path] = []
        for s in self.samples(split):
            out.extend(p for p in (s.low, s.high, s.mask) if p is not None)
        return out

    def manifest(self, split: str) -> dict[str, str]:
        """``{path relative to root: sha256}`` for every file of ``split`` (cached by size/mtime)."""
        return file_manifest(self.root, self.files(split))

    def manifest_hash(self, split: str) -> str:
        return hash_manifest(self.manifest(split))


def split_check(dataset: Dataset, split: str) -> None:
    if split not in dataset.splits:
        raise DatasetError(
            f"dataset {dataset.name!r} has no split {split!r}; its splits: {', '.join(dataset.splits)}"
        )


def pair_by_stem(
    low_files: Sequence[Path],
    high_files: Sequence[Path],
    where: str = "",
    key: Callable[[Path], str] | None = None,
) -> list[Sample]:
    """Pair files by stem; raise :class:`DatasetError` listing every unmatched or duplicated file.

    ``key`` maps a file to the name it pairs by (default: its stem), for layouts whose low- and
    normal-light files differ by a prefix (LOL-v2 real: ``low00001.png`` / ``normal00001.png``).
    """
    lows, highs = _by_stem(low_files, where, key), _by_stem(high_files, where, key)
    only_low = sorted(set(lows) - set(highs))
    only_high = sorted(set(highs) - set(lows))
    if only_low or only_high:
        parts = []
        if only_low:
            parts.append(
                f"low-light files without a reference: {_preview(lows[s] for s in only_low)}"
            )
        if only_high:
            parts.append(
                f"references without a low-light file: {_preview(highs[s] for s in only_high)}"
            )
        raise DatasetError(f"unmatched pairs{' in ' + where if where else ''}: " + "; ".join(parts))
    return [Sample(stem, lows[stem], highs[stem]) for stem in sorted(lows, key=natural_key)]


def _by_stem(
    files: Iterable[Path], where: str, key: Callable[[Path], str] | None = None
) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        stem = key(f) if key is not None else f.stem
        if stem in out:
            raise DatasetError(
                f"two files share the stem {stem!r}{' in ' + where if where else ''}: {out[stem]} and {f}"
            )
        out[stem] = f
    return out


def _preview(paths: Iterable[Path], n: int = 10) -> str:
    paths = [str(p) for p in paths]
    more = f" (and {len(paths) - n} more)" if len(paths) > n else ""
    return ", ".join(paths[:n]) + more


def natural_key(s: str) -> tuple:
    """Sort key that orders ``2`` before ``10``."""
    import re

    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s))


def image_files(folder: Path) -> list[Path]:
    """Image files inside ``folder`` (not recursive), natural order; DatasetError if absent."""
    if not folder.is_dir():
        raise DatasetError(f"missing folder {folder}")
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: natural_key(p.name))
