"""Plugin module ``llbench.datasets.user``: datasets a user added with ``llbench datasets add``.

``llbench datasets add NAME PATH --layout paired|unpaired`` records the folder in
``<home>/datasets.json``; this plugin (entry point ``user-datasets``) reads that file when the
plugins load (the ``home`` its hook is handed: ``--home`` / ``LLBENCH_HOME``) and registers
one dataset per entry. The folder is read where it is; nothing is copied.

Layouts (folder names are matched as listed, first match wins):

* ``paired``: ``PATH/<split>/{low,high}/`` for each split folder (``train``, ``val``, ``test``
  or any other name), or ``PATH/{low,high}/`` for a single ``test`` split. Low-light folders may
  be called low, input or lq; reference folders high, normal, gt or target. Files pair by stem.
* ``unpaired``: ``PATH/<split>/`` holding images, or images directly in ``PATH`` (a single
  ``test`` split).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from llbench import paths
from llbench.api import DatasetSpec, hookimpl
from llbench.api.datasets import Sample, image_files
from llbench.errors import DatasetError
from llbench.io.manifests import file_manifest

from .folders import FolderDataset
from .pairing import HIGH_NAMES, LOW_NAMES, first_existing, pair_folder, unique_by_stem
from .sources import Source

LAYOUTS = ("paired", "unpaired")
FILE_NAME = "datasets.json"
SPLIT_ORDER = ("train", "val", "test")


def registry_file(home: Path | None = None) -> Path:
    return (Path(home) if home is not None else paths.home()) / FILE_NAME


def load_entries(home: Path | None = None) -> dict[str, dict]:
    """``{name: {"path", "layout", "splits", "added"}}`` from ``<home>/datasets.json``."""
    path = registry_file(home)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}); fix or delete it") from exc
    entries = data.get("datasets", {}) if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise DatasetError(f"{path} has no 'datasets' table; fix or delete it")
    return entries


def save_entries(entries: dict[str, dict], home: Path | None = None) -> Path:
    path = registry_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": 1, "datasets": entries}, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def detect_splits(path: Path, layout: str) -> tuple[str, ...]:
    """The splits found in ``path`` for ``layout`` (see the module docstring)."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path} is not a folder")
    if layout == "paired":
        if first_existing(path, LOW_NAMES) and first_existing(path, HIGH_NAMES):
            return ("test",)
        found = [
            d.name
            for d in path.iterdir()
            if d.is_dir() and first_existing(d, LOW_NAMES) and first_existing(d, HIGH_NAMES)
        ]
        hint = f"{path}/<split>/{{low,high}} or {path}/{{low,high}}"
    elif layout == "unpaired":
        if _has_images(path):
            return ("test",)
        found = [d.name for d in path.iterdir() if d.is_dir() and _has_images(d)]
        hint = f"images in {path}/<split>/ or directly in {path}"
    else:
        raise DatasetError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if not found:
        raise DatasetError(f"no {layout} data found: expected {hint}")
    return tuple(sorted(found, key=lambda s: (SPLIT_ORDER + (s,)).index(s)))


def _has_images(folder: Path) -> bool:
    try:
        return bool(image_files(folder))
    except DatasetError:
        return False


class UserDataset(FolderDataset):
    """A folder the user registered; ``splits`` and ``paired`` come from the stored entry."""

    layout_name = "paired"

    def __init__(
        self,
        name: str,
        root: Path,
        layout: str,
        splits: tuple[str, ...],
        home: Path | None = None,
    ):
        super().__init__(root)
        self.home = Path(home) if home is not None else paths.home()
        self.name = name
        self.folder = str(root)
        self.layout_name = layout
        self.paired = layout == "paired"
        self.splits = tuple(splits)
        self.source = Source(page=str(root), citation=f"user dataset added from {root}")
        self.layout = (
            "<split>/{low,high}/ or {low,high}/" if self.paired else "<split>/*.png or *.png"
        )

    def where_to_get(self) -> str:
        return (
            f"It was added from {self.root}: put the data back there, or add it again with "
            f"`llbench datasets add {self.name} PATH --layout {self.layout_name}`."
        )

    def manifest_paths(self) -> list[Path]:
        """Your folder is left untouched: the manifest lives in the llbench home."""
        return [self.home / "manifests" / f"{self.name}.json"]

    def manifest(self, split: str) -> dict[str, str]:
        cache = paths.cache_dir(self.home) / "hashes" / f"user-{self.name}.json"
        return file_manifest(self.root, self.files(split), cache)

    def where_short(self) -> str:
        return f"your folder {self.root} is gone or empty; put the data back or add it again"

    def manual_steps(self, cache_dir: Path) -> str:
        return (
            f"{self.name} is a folder you added ({self.root}); there is nothing to download. "
            f"Run `llbench datasets verify {self.name}` to check it."
        )

    def fetch(self, cache_dir: Path, *, archive=None, progress=True, timeout=10.0, force=False):
        if archive is not None:
            raise DatasetError(
                f"{self.name} is a folder you added; extract the archive into {self.root} instead"
            )
        from .fetching import FetchResult

        return FetchResult(["nothing to download: it is your folder"], self.verify(update=force))

    def _folder(self, split: str) -> Path:
        single = self.splits == ("test",) and not (self.root / "test").is_dir()
        return self.root if single else self.root / split

    def _split_samples(self, split: str) -> list[Sample]:
        folder = self._folder(split)
        where = f"{self.name} {split}"
        if self.paired:
            return pair_folder(folder, where)
        if not folder.is_dir():
            raise DatasetError(f"missing folder {folder}")
        files = image_files(folder)
        if not files:
            raise DatasetError(f"no images in {folder}")
        return unique_by_stem(files, where)


def _builder(name: str, entry: dict, home: Path | None = None) -> Callable[[Path], UserDataset]:
    def build(data_root: Path) -> UserDataset:
        return UserDataset(name, Path(entry["path"]), entry["layout"], tuple(entry["splits"]), home)

    return build


def spec_for(name: str, entry: dict, home: Path | None = None) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        build=_builder(name, entry, home),
        summary=f"your {entry['layout']} folder {entry['path']}",
        paired=entry["layout"] == "paired",
        splits=tuple(entry["splits"]),
        source=f"added with `llbench datasets add` on {entry.get('added', '?')}",
    )


def add_entry(name: str, path: Path, layout: str, home: Path | None = None) -> dict:
    """Validate ``path`` for ``layout`` and store it; returns the stored entry."""
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    path = Path(path).expanduser().resolve()
    splits = detect_splits(path, layout)
    entry = {
        "path": str(path),
        "layout": layout,
        "splits": list(splits),
        "added": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        spec_for(name, entry)  # checks the name
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    ds = UserDataset(name, path, layout, splits)
    for split in splits:
        ds.samples(split)  # pairing errors list the unmatched files
    entries = load_entries(home)
    entries[name] = entry
    save_entries(entries, home)
    return entry


def remove_entry(name: str, home: Path | None = None) -> dict:
    entries = load_entries(home)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise DatasetError(f"{name!r} is not a dataset you added (added: {known})")
    entry = entries.pop(name)
    save_entries(entries, home)
    return entry


@hookimpl
def register_datasets(register, home):
    for name, entry in sorted(load_entries(home).items()):
        register(spec_for(name, entry, home))
