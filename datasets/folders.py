"""Shared machinery of llbench's folder datasets: sources, layout checks, manifests, fetching.

A :class:`FolderDataset` lives in ``<data root>/<folder>`` (or one wrapper folder below it, as
archives often add one: ``<data root>/lol/LOLdataset/our485/...`` works too). Subclasses list
their samples per split; this base class adds:

* **status** with verification: ``present`` (every split there and the files match the manifest
  recorded at fetch/verify time), ``unverified`` (files there, no manifest yet or files changed
  since), ``incomplete`` (a split or some images missing: the detail names them) and ``absent``
  (the detail says where to put the data and where to get it);
* :meth:`FolderDataset.verify`: decodes every image and reports what :func:`llbench.io.images.
  read_image` will convert (greyscale, alpha, 16-bit, EXIF rotation, CMYK) and what it cannot
  read (truncated or corrupt files), checks pair sizes and image counts, compares the files with
  the recorded manifest and records a new one (``.llbench-manifest-<name>.json`` in the dataset
  folder, or ``<home>/manifests/<name>.json`` when the folder is read-only);
* :meth:`FolderDataset.fetch`: downloads the dataset's archives (resumable, sha256-checked), or
  takes an archive the user downloaded by hand, extracts it safely, and verifies. Where no
  stable direct URL exists (Google Drive, Baidu Pan) it raises :class:`DatasetError` with the
  exact manual steps.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path

from llbench.api.datasets import Dataset, DatasetStatus, Sample, image_files, split_check
from llbench.errors import DatasetError

from .fetching import FetchMixin, FetchResult
from .image_checks import ImageCheck, check_image
from .pairing import (
    HIGH_NAMES,
    LOW_NAMES,
    first_existing,
    pair_folder,
    strip_prefix_key,
    unique_by_stem,
)
from .sources import Archive, Source
from .verification import MANIFEST_VERSION, VerifyMixin, VerifyReport

# Everything below was defined here before the split; plugins import these names from here.
__all__ = [
    "HIGH_NAMES",
    "LOW_NAMES",
    "MANIFEST_VERSION",
    "Archive",
    "FetchResult",
    "FolderDataset",
    "ImageCheck",
    "PairedFolderDataset",
    "Source",
    "UnpairedFolderDataset",
    "VerifyReport",
    "check_image",
    "first_existing",
    "pair_folder",
    "strip_prefix_key",
    "unique_by_stem",
]


# -- the base class ------------------------------------------------------------------------------
class FolderDataset(VerifyMixin, FetchMixin, Dataset):
    """A dataset read from a folder layout; see the module docstring.

    Subclasses set ``name``, ``folder``, ``paired``, ``splits``, ``source``, ``layout`` (a
    one-line description of the expected layout), ``markers`` (relative paths whose presence
    identifies the layout) and ``expected`` (split -> accepted image counts), and implement
    :meth:`_split_samples`.
    """

    folder: str = ""
    source: Source = Source("", "")
    layout: str = ""
    markers: tuple[str, ...] = ()
    expected: dict[str, tuple[int, ...]] = {}
    image_size: tuple[int, int] | None = None  # (width, height) when the dataset has one size
    masks: bool = False

    # -- layout ----------------------------------------------------------------------------------
    @property
    def base(self) -> Path:
        """The folder holding the layout: the root, or a single wrapper folder inside it."""
        root = self.root
        if not self.markers or any((root / m).exists() for m in self.markers):
            return root
        if root.is_dir():
            for child in sorted(root.iterdir()):
                if child.is_dir() and not child.name.startswith("."):
                    if any((child / m).exists() for m in self.markers):
                        return child
        return root

    def samples(self, split: str) -> list[Sample]:
        split_check(self, split)
        if not self.root.exists():
            raise DatasetError(
                f"{self.name}: the {split!r} split is missing because {self.root} does not exist. "
                f"{self.where_to_get()}"
            )
        try:
            return self._split_samples(split)
        except DatasetError as exc:
            raise DatasetError(f"{self.name} {split} split: {exc}") from exc

    @abc.abstractmethod
    def _split_samples(self, split: str) -> list[Sample]:
        """The samples of ``split`` read from this dataset's layout."""

    def where_to_get(self) -> str:
        src = self.source
        direct = [a for a in src.archives if a.url]
        how = (
            f"`llbench datasets fetch {self.name}` downloads it"
            if direct
            else f"see `llbench datasets fetch {self.name}` for the manual steps"
        )
        layout = f" with the layout {self.layout}" if self.layout else ""
        return f"Put it at {self.root}{layout}; get it from {src.page} ({how})."

    def where_short(self) -> str:
        """Where to put it and where to get it, in one short line (for listings)."""
        direct = any(a.url for a in self.source.archives)
        how = "downloads it" if direct else "prints the steps"
        return (
            f"put it in {self.root}; get it from {self.source.page} "
            f"(`llbench datasets fetch {self.name}` {how})"
        )

    # -- status ----------------------------------------------------------------------------------
    def split_state(self) -> tuple[dict[str, int], dict[str, str], list[str]]:
        """Image counts of present splits, errors of missing ones, and count shortfalls."""
        counts: dict[str, int] = {}
        missing: dict[str, str] = {}
        short: list[str] = []
        for split in self.splits:
            try:
                counts[split] = len(self.samples(split))
            except DatasetError as exc:
                missing[split] = str(exc)
                continue
            accepted = self.expected.get(split)
            if accepted and counts[split] < min(accepted):
                want = " or ".join(str(n) for n in accepted)
                short.append(f"{split}: {counts[split]} images, expected {want}")
        return counts, missing, short

    def status(self) -> DatasetStatus:
        counts, missing, short = self.split_state()
        if not counts:
            if not self.root.exists():
                return DatasetStatus("absent", self.where_short())
            detail = "; ".join(missing.values())
            return DatasetStatus("absent", f"{detail}. {self.where_short()}")
        if missing or short:
            parts = list(missing.values()) + short
            return DatasetStatus("incomplete", "; ".join(parts), counts)
        recorded = self.load_manifest()
        if recorded is None:
            return DatasetStatus(
                "unverified",
                f"no manifest yet: `llbench datasets verify {self.name}` checks the images and "
                "records one",
                counts,
            )
        diff = self._diff(recorded, self._current_manifests(list(counts)))
        if any(diff.values()):
            n = sum(len(v) for v in diff.values())
            first = next(p for v in diff.values() for p in v)
            return DatasetStatus(
                "unverified",
                f"{n} file(s) differ from the manifest recorded {recorded.get('created', '?')} "
                f"(e.g. {first}); run `llbench datasets verify {self.name}`",
                counts,
            )
        return DatasetStatus(
            "present", f"verified against the manifest of {recorded['created']}", counts
        )


# -- reusable layouts ----------------------------------------------------------------------------
class PairedFolderDataset(FolderDataset):
    """Paired splits in ``<split folder>/{low,high}``; ``split_dirs`` maps split -> folder."""

    paired = True
    split_dirs: dict[str, str] = {}
    low_names: tuple[str, ...] = LOW_NAMES
    high_names: tuple[str, ...] = HIGH_NAMES
    pair_key: Callable[[Path], str] | None = None

    def _split_samples(self, split: str) -> list[Sample]:
        folder = self.base / self.split_dirs[split]
        return self.pair_folder(folder, f"{self.name} {split}")

    def pair_folder(self, folder: Path, where: str, prefix: str = "") -> list[Sample]:
        return pair_folder(
            folder, where, self.low_names, self.high_names, type(self).pair_key, prefix
        )


class UnpairedFolderDataset(FolderDataset):
    """Unpaired test images, flat in the dataset folder (or one wrapper folder)."""

    paired = False
    splits = ("test",)

    @property
    def base(self) -> Path:
        root = self.root
        if not root.is_dir() or _has_images(root):
            return root
        subdirs = [c for c in sorted(root.iterdir()) if c.is_dir() and not c.name.startswith(".")]
        with_images = [c for c in subdirs if _has_images(c)]
        return with_images[0] if len(with_images) == 1 else root

    def _split_samples(self, split: str) -> list[Sample]:
        files = image_files(self.base)
        if not files:
            raise DatasetError(f"no images in {self.base} ({self.layout})")
        return unique_by_stem(files, f"{self.name} {split}")


def _has_images(folder: Path) -> bool:
    try:
        return bool(image_files(folder))
    except DatasetError:
        return False
