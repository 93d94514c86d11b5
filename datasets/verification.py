"""Checking a folder dataset's files: the manifest it records and :meth:`VerifyMixin.verify`.

:class:`VerifyMixin` holds the manifest and verification methods of
:class:`~llbench.datasets.folders.FolderDataset` (whose module docstring describes them);
:class:`VerifyReport` is what ``verify`` returns.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from llbench import paths
from llbench.api.datasets import Sample
from llbench.errors import DatasetError
from llbench.io.manifests import hash_manifest

from .image_checks import ImageCheck, check_image

MANIFEST_VERSION = 1


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


class VerifyMixin:
    """The manifests and verification of :class:`~llbench.datasets.folders.FolderDataset`."""

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
