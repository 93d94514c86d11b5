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
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from llbench import paths
from llbench.api.datasets import (
    Dataset,
    DatasetStatus,
    Sample,
    image_files,
    natural_key,
    pair_by_stem,
    split_check,
)
from llbench.errors import DatasetError
from llbench.io.hashing import sha256_file
from llbench.io.manifests import hash_manifest

MANIFEST_VERSION = 1


# -- where a dataset comes from ------------------------------------------------------------------
@dataclass(frozen=True)
class Archive:
    """One downloadable file of a dataset.

    ``url`` is a stable direct download (None when the file is only on Google Drive, Baidu Pan
    or similar, which need a browser). ``sha256`` is the published or independently recorded
    hash, ``sha256_source`` says where it was found. ``include`` limits extraction to members
    under these path prefixes (inside the archive).
    """

    filename: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    sha256_source: str = ""
    include: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()  # browser-only links (Google Drive, Baidu Pan with code)


@dataclass(frozen=True)
class Source:
    """Where a dataset is published: official page, paper, archives."""

    page: str
    citation: str
    archives: tuple[Archive, ...] = ()
    notes: str = ""

    def describe(self) -> str:
        """One line for :attr:`DatasetSpec.source`."""
        direct = [a.url for a in self.archives if a.url]
        where = direct[0] if direct else self.page
        return f"{self.citation}. {where}"


# -- images --------------------------------------------------------------------------------------
_EXIF_ORIENTATION = 0x0112


@dataclass
class ImageCheck:
    """What reading one image involves: ``size`` is (width, height) after EXIF rotation."""

    path: Path
    size: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def check_image(path: Path, *, mask: bool = False) -> ImageCheck:
    """Decode ``path`` fully and say which conversion :func:`llbench.io.images.read_image` applies.

    Masks (``mask=True``) must be single-channel label images (palette ``P`` or ``L``); their
    values are class indices, so no conversion is applied to them.
    """
    out = ImageCheck(Path(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
                mode = im.mode
                has_transparency = "transparency" in im.info
                im.load()  # full decode: truncated files fail here
                w, h = im.size
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        out.error = f"cannot decode ({exc})"
        return out
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    out.size = (w, h)
    if mask:
        if mode not in ("P", "L"):
            out.error = f"a mask must be a palette (P) or greyscale (L) PNG of labels, not {mode}"
        return out
    if orientation not in (1, None):
        out.notes.append(f"EXIF orientation {orientation}: rotated upright")
    if mode in ("L", "1", "LA"):
        out.notes.append("greyscale: replicated to three channels")
    if mode in ("I;16", "I;16B", "I;16L", "I") or mode.endswith(";16"):
        out.notes.append("16-bit: scaled to 8 bits (round(v / 257))")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and has_transparency):
        out.notes.append("alpha channel: composited over black and dropped")
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        out.notes.append(f"{mode}: converted to RGB")
    if mode == "F":
        out.notes.append("32-bit float: scaled to 8 bits")
    return out


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


# -- verification results ------------------------------------------------------------------------
@dataclass
class VerifyReport:
    """The outcome of :meth:`FolderDataset.verify` (the CLI prints it)."""

    dataset: str
    counts: dict[str, int] = field(default_factory=dict)
    missing_splits: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    new_files: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    recorded: Path | None = None
    compared_with: str = ""  # when the manifest compared against was recorded

    @property
    def differs(self) -> bool:
        return bool(self.changed or self.missing_files or self.new_files)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.differs


@dataclass
class FetchResult:
    """What :meth:`FolderDataset.fetch` did."""

    messages: list[str]
    report: VerifyReport


# -- the base class ------------------------------------------------------------------------------
class FolderDataset(Dataset):
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

    # -- manifests -------------------------------------------------------------------------------
    def manifest_paths(self) -> list[Path]:
        """Where the recorded manifest lives: the dataset folder, else the llbench home."""
        return [
            self.root / f".llbench-manifest-{self.name}.json",
            paths.home() / "manifests" / f"{self.name}.json",
        ]

    def load_manifest(self) -> dict | None:
        for p in self.manifest_paths():
            try:
                data = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("dataset") == self.name and "splits" in data:
                return data
        return None

    def _current_manifests(self, splits: Iterable[str]) -> dict[str, dict[str, str]]:
        return {s: self.manifest(s) for s in splits}

    @staticmethod
    def _diff(recorded: dict, current: dict[str, dict[str, str]]) -> dict[str, list[str]]:
        changed, gone, new = [], [], []
        rec_splits = recorded.get("splits", {})
        for split, files in current.items():
            old = rec_splits.get(split, {}).get("files")
            if old is None:
                new.extend(f"{split}: {p}" for p in files)
                continue
            for rel, digest in files.items():
                if rel not in old:
                    new.append(rel)
                elif old[rel] != digest:
                    changed.append(rel)
            gone.extend(rel for rel in old if rel not in files)
        for split in rec_splits:
            if split not in current:
                gone.extend(rec_splits[split].get("files", {}))
        return {"changed": changed, "missing": gone, "new": new}

    def record_manifest(
        self, manifests: dict[str, dict[str, str]], archives: dict[str, str] | None = None
    ) -> Path:
        data = {
            "dataset": self.name,
            "format": MANIFEST_VERSION,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "root": str(self.root),
            "splits": {
                s: {"count": len(m), "hash": hash_manifest(m), "files": m}
                for s, m in manifests.items()
            },
            "archives": archives or {},
        }
        text = json.dumps(data, indent=1, sort_keys=True)
        errors = []
        for p in self.manifest_paths():
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
                tmp.write_text(text)
                os.replace(tmp, p)
                return p
            except OSError as exc:
                errors.append(f"{p}: {exc}")
        raise DatasetError(f"cannot record the manifest of {self.name}: {'; '.join(errors)}")

    # -- verification ----------------------------------------------------------------------------
    def verify(
        self,
        *,
        update: bool = False,
        check_images: bool = True,
        archives: dict[str, str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Check the files (see the module docstring); record a manifest when all is well.

        With a manifest already recorded, changed/missing/new files are reported and nothing is
        recorded unless ``update`` is true.
        """
        report = VerifyReport(self.name)
        per_split: dict[str, list[Sample]] = {}
        for split in self.splits:
            try:
                per_split[split] = self.samples(split)
            except DatasetError as exc:
                report.missing_splits[split] = str(exc)
        if not per_split:
            raise DatasetError(
                f"{self.name} is not here: "
                + "; ".join(f"{s}: {e}" for s, e in report.missing_splits.items())
            )
        report.counts = {s: len(v) for s, v in per_split.items()}
        for split, n in report.counts.items():
            accepted = self.expected.get(split)
            if accepted and n < min(accepted):
                want = " or ".join(str(k) for k in accepted)
                report.problems.append(f"{split}: {n} images, expected {want}: some are missing")
        if check_images:
            self._check_images(per_split, report, progress)
        current = self._current_manifests(per_split)
        recorded = self.load_manifest()
        if recorded is not None:
            diff = self._diff(recorded, current)
            report.changed, report.missing_files, report.new_files = (
                diff["changed"],
                diff["missing"],
                diff["new"],
            )
            report.compared_with = recorded.get("created", "?")
        if report.problems:
            return report
        if recorded is None or update:
            prior = (recorded or {}).get("archives", {})
            report.recorded = self.record_manifest(current, {**prior, **(archives or {})})
        return report

    def _check_images(
        self,
        per_split: dict[str, list[Sample]],
        report: VerifyReport,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        total = sum(len(v) for v in per_split.values())
        done = 0
        checked: dict[Path, ImageCheck] = {}

        def check(p: Path, mask: bool = False) -> ImageCheck:
            if p not in checked:
                checked[p] = check_image(p, mask=mask)
            return checked[p]

        for split, samples in per_split.items():
            for s in samples:
                low = check(s.low)
                high = check(s.high) if s.high is not None else None
                mask = check(s.mask, mask=True) if s.mask is not None else None
                for c in (low, high, mask):
                    if c is None:
                        continue
                    if c.error:
                        report.problems.append(f"{c.path}: {c.error}")
                    for note in c.notes:
                        report.notes.setdefault(note, []).append(str(c.path))
                if self.paired and self.pairs_aligned(split) and high is not None:
                    if low.size and high.size and low.size != high.size:
                        report.problems.append(
                            f"{split}/{s.key}: low-light image is {low.size[0]}x{low.size[1]} but "
                            f"its reference is {high.size[0]}x{high.size[1]} ({s.low}, {s.high})"
                        )
                if mask is not None and mask.size and low.size and mask.size != low.size:
                    report.problems.append(
                        f"{split}/{s.key}: mask is {mask.size[0]}x{mask.size[1]}, image is "
                        f"{low.size[0]}x{low.size[1]} ({s.mask})"
                    )
                if self.image_size and low.size and low.size != self.image_size:
                    w, h = self.image_size
                    report.notes.setdefault(f"not {w}x{h} like the rest of {self.name}", []).append(
                        str(s.low)
                    )
                done += 1
                if progress is not None:
                    progress(done, total)

    def pairs_aligned(self, split: str) -> bool:
        """Whether ``high`` of ``split``'s samples is the aligned reference of ``low``."""
        return self.paired

    # -- fetching --------------------------------------------------------------------------------
    def downloads_dir(self, cache_dir: Path) -> Path:
        return Path(cache_dir) / "downloads" / self.name

    def manual_steps(self, cache_dir: Path) -> str:
        """Exact steps to get the data by hand (printed when no direct download exists)."""
        src = self.source
        lines = [f"{self.name} ({src.citation}) has to be downloaded by hand:"]
        n = 1
        for a in src.archives:
            where = f" from {a.url}" if a.url else f" from the page {src.page}"
            mirrors = f" (links: {'; '.join(a.mirrors)})" if a.mirrors else ""
            check = f", sha256 {a.sha256}" if a.sha256 else ""
            lines.append(f"  {n}. Download {a.filename}{where}{mirrors}{check}.")
            n += 1
        if not src.archives:
            lines.append(f"  {n}. Download it from {src.page}.")
            n += 1
        first = src.archives[0].filename if src.archives else "ARCHIVE"
        dl = self.downloads_dir(cache_dir)
        layout = self.layout or "the layout"
        if first.lower().endswith(
            (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", "ARCHIVE")
        ):
            lines.append(
                f"  {n}. Either run `llbench datasets fetch {self.name} --archive PATH/{first}`, or "
                f"put the file in {dl}/ and run `llbench datasets fetch {self.name}`, or extract "
                f"it yourself so that {self.root} holds {layout}."
            )
        else:
            lines.append(
                f"  {n}. Extract it (e.g. `7z x {first}` or `unrar x {first}`) so that {self.root} "
                f"holds {layout}."
            )
        lines.append(
            f"  {n + 1}. Run `llbench datasets verify {self.name}` to check the images and record "
            "the manifest."
        )
        if src.notes:
            lines.append(f"  Note: {src.notes}")
        return "\n".join(lines)

    def include_member(self, name: str) -> bool:
        """Which archive members to extract (all by default)."""
        prefixes = tuple(p for a in self.source.archives for p in a.include)
        return not prefixes or name.startswith(prefixes)

    def fetch(
        self,
        cache_dir: Path,
        *,
        archive: Path | None = None,
        progress: bool = True,
        timeout: float = 10.0,
        force: bool = False,
    ) -> FetchResult:
        """Download (or take ``archive``), extract safely, prepare and verify; see the module doc."""
        from llbench.io.download import download, safe_extract

        messages: list[str] = []
        hashes: dict[str, str] = {}
        if archive is not None:
            archive = Path(archive).expanduser().resolve()
            if not archive.is_file():
                raise DatasetError(f"archive not found: {archive}")
            hashes[archive.name] = self._check_archive_hash(archive)
            safe_extract(archive, self.root, include=self.include_member)
            messages.append(f"extracted {archive} into {self.root}")
        else:
            counts, _missing, short = self.split_state()
            if counts and len(counts) == len(self.splits) and not short and not force:
                messages.append(f"{self.name} is already in {self.root}; not downloading")
            else:
                if not self.source.archives:
                    raise DatasetError(self.manual_steps(cache_dir))
                dl = self.downloads_dir(cache_dir)
                local: list[Path] = []
                for a in self.source.archives:
                    path = dl / a.filename
                    if path.is_file() and not path.with_name(path.name + ".part").exists():
                        messages.append(f"using {path}")
                    elif a.url:
                        path = download(
                            a.url,
                            path,
                            a.sha256,
                            progress=progress,
                            timeout=timeout,
                            manual=f"Or follow the manual steps:\n{self.manual_steps(cache_dir)}",
                        )
                        messages.append(f"downloaded {a.url} to {path}")
                    else:
                        raise DatasetError(self.manual_steps(cache_dir))
                    local.append(path)
                for a, path in zip(self.source.archives, local, strict=True):
                    hashes[a.filename] = self._check_archive_hash(path, a)
                    safe_extract(path, self.root, include=self.include_member)
                    messages.append(f"extracted {path.name} into {self.root}")
        self.prepare()
        report = self.verify(update=True, archives=hashes)
        return FetchResult(messages, report)

    def _check_archive_hash(self, path: Path, archive: Archive | None = None) -> str:
        if archive is None:
            archive = next((a for a in self.source.archives if a.filename == path.name), None)
        digest = sha256_file(path)
        if archive is not None and archive.sha256 and digest != archive.sha256.lower():
            raise DatasetError(
                f"{path} has sha256 {digest}, but {archive.filename} of {self.name} has "
                f"{archive.sha256} ({archive.sha256_source or self.source.page}); it is a "
                "different or damaged file. Delete it and download it again."
            )
        return digest


# -- reusable layouts ----------------------------------------------------------------------------
LOW_NAMES = ("low", "Low", "LOW", "input", "Input", "lq", "LQ")
HIGH_NAMES = ("high", "High", "HIGH", "normal", "Normal", "gt", "GT", "target", "Target")


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


def strip_prefix_key(*prefixes: str) -> Callable[[Path], str]:
    """A pairing key that drops a leading ``low``/``normal``-style prefix from the stem."""
    pattern = re.compile(rf"^(?:{'|'.join(re.escape(p) for p in prefixes)})", re.IGNORECASE)

    def key(path: Path) -> str:
        return pattern.sub("", path.stem)

    return key
