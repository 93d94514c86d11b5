"""HiLLIE's unpaired training splits, derived (seeded) from LOL, LOL-v2 and LSRW.

Zhao et al., "HiLLIE: Human-in-the-Loop Training for Low-Light Image Enhancement", Sec. 4.1:

* ``lol-unpaired``: "all 485 low-light input images from LOLv1 along with randomly selected 485
  normal-light ground-truth images from LSRW for training, followed by evaluation on the
  15-image paired test set of LOLv1". The 485 normal-light images are drawn without
  replacement from LSRW's training references (both subsets, in key order) with
  ``numpy.random.default_rng(SEED)``.
* ``lolv2-unpaired``: "we divide the original train set into two equal portions, utilizing 344
  low-light input images and non-paired 344 normal-light ground-truth images for training, then
  evaluate on the 100-image paired test set". The 689 LOL-v2 real training pairs (key order)
  are permuted with ``default_rng(SEED)``; the first 344 give their low-light images, the next
  344 their normal-light images (the 689th pair is unused), so no scene appears on both sides.

A training sample's ``high`` is therefore an *unaligned* normal-light image, the other side of
the unpaired set, never the reference of ``low``; test samples are the original aligned pairs.
Nothing is copied: the samples point into ``<data root>/lol``, ``lsrw`` and ``lolv2``.
``prepare()`` writes the selection to ``<data root>/<name>/selection.json`` for the record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from llbench.api.datasets import DatasetStatus, Sample, natural_key, split_check
from llbench.errors import DatasetError

from .folders import FolderDataset
from .lol import LOL, LOLv2Real
from .lsrw import LSRW
from .sources import Source

SEED = 0

HILLIE = (
    "Zhao, Zhou, Cao, Lou, Gu, HiLLIE: Human-in-the-Loop Training for Low-Light Image "
    "Enhancement (Sec. 4.1, unpaired training splits)"
)


class DerivedDataset(FolderDataset):
    """A dataset whose samples are chosen (seeded) from other datasets under the data root."""

    parts: tuple[type[FolderDataset], ...] = ()

    def __init__(self, root: Path, data_root: Path | None = None):
        super().__init__(root)
        self.data_root = Path(data_root) if data_root is not None else self.root.parent
        self.components: list[FolderDataset] = [
            cls(self.data_root / cls.folder) for cls in self.parts
        ]

    @property
    def base(self) -> Path:
        return self.root

    def where_to_get(self) -> str:
        names = " and ".join(c.name for c in self.components)
        return f"It is derived from {names}: fetch those first (`llbench datasets fetch NAME`)."

    def where_short(self) -> str:
        return self.where_to_get()

    def samples(self, split: str) -> list[Sample]:
        split_check(self, split)
        try:
            return self._split_samples(split)
        except DatasetError as exc:
            raise DatasetError(f"{self.name} {split} split: {exc}") from exc

    def pairs_aligned(self, split: str) -> bool:
        return split != "train"

    def status(self) -> DatasetStatus:
        missing = []
        for c in self.components:
            st = c.status()
            if st.state == "absent":
                missing.append(f"{c.name} is absent")
        if len(missing) == len(self.components):
            return DatasetStatus("absent", f"{'; '.join(missing)}. {self.where_to_get()}")
        return super().status()

    def fetch(self, cache_dir: Path, *, archive=None, progress=True, timeout=10.0, force=False):
        if archive is not None:
            raise DatasetError(
                f"{self.name} is derived from "
                f"{', '.join(c.name for c in self.components)}; give the archive to those"
            )
        problems = []
        for c in self.components:
            counts, missing, short = c.split_state()
            need = [s for s in c.splits if s not in counts]
            if need or short:
                problems.append(f"{c.name} ({', '.join(need + short)} missing)")
        if problems:
            raise DatasetError(
                f"{self.name} is derived from other datasets, and these are not complete here: "
                f"{'; '.join(problems)}. Run `llbench datasets fetch NAME` for each, then again "
                f"for {self.name}."
            )
        from .fetching import FetchResult

        self.prepare()
        report = self.verify(update=True)
        return FetchResult([f"derived {self.name} from {self.data_root}"], report)

    def manual_steps(self, cache_dir: Path) -> str:
        return "\n".join(
            [f"{self.name} is derived from other datasets; get those first:"]
            + [c.manual_steps(cache_dir) for c in self.components]
        )

    def selection(self) -> dict:
        """The seeded choice, as written to ``selection.json`` (paths relative to the data root)."""
        train = self.samples("train")
        rel = lambda p: os.path.relpath(p, self.data_root)  # noqa: E731
        return {
            "dataset": self.name,
            "seed": SEED,
            "source": HILLIE,
            "train": [[s.key, rel(s.low), rel(s.high)] for s in train],
        }

    def prepare(self) -> None:
        try:
            sel = self.selection()
        except DatasetError:
            return  # the sources are missing: samples() says which
        path = self.root / "selection.json"
        text = json.dumps(sel, indent=1)
        try:
            if path.is_file() and path.read_text() == text:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".selection.{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only data root still works: the selection is recomputed each time


class LOLUnpaired(DerivedDataset):
    """LOL's 485 low-light images with 485 random LSRW normal-light images; LOL's test pairs."""

    name = "lol-unpaired"
    folder = "lol-unpaired"
    source = Source(page="(derived from lol and lsrw)", citation=HILLIE)
    layout = "nothing of its own: needs lol (train and test) and lsrw (train)"
    parts = (LOL, LSRW)
    expected = {"train": (485,), "test": (15,)}

    def _split_samples(self, split: str) -> list[Sample]:
        lol, lsrw = self.components
        if split == "test":
            return lol.samples("test")
        lows = lol.samples("train")
        normals = sorted(
            (s.high for s in lsrw.samples("train") if s.high is not None),
            key=lambda p: natural_key(str(p)),
        )
        if len(normals) < len(lows):
            raise DatasetError(
                f"{self.name} needs {len(lows)} normal-light images from lsrw's training split, "
                f"which has only {len(normals)}"
            )
        chosen = np.random.default_rng(SEED).choice(len(normals), size=len(lows), replace=False)
        return [Sample(s.key, s.low, normals[int(i)]) for s, i in zip(lows, chosen, strict=True)]


class LOLv2Unpaired(DerivedDataset):
    """LOL-v2 real training pairs halved into 344 low and 344 unrelated normal images."""

    name = "lolv2-unpaired"
    folder = "lolv2-unpaired"
    source = Source(page="(derived from lolv2-real)", citation=HILLIE)
    layout = "nothing of its own: needs lolv2-real (train and test)"
    parts = (LOLv2Real,)
    expected = {"train": (344,), "test": (100,)}

    def _split_samples(self, split: str) -> list[Sample]:
        (real,) = self.components
        if split == "test":
            return real.samples("test")
        pairs = real.samples("train")
        half = len(pairs) // 2
        if half == 0:
            raise DatasetError(f"{self.name}: lolv2-real's training split has fewer than 2 pairs")
        order = np.random.default_rng(SEED).permutation(len(pairs))
        lows = [pairs[int(i)] for i in order[:half]]
        highs = [pairs[int(i)] for i in order[half : 2 * half]]
        out = [Sample(lo.key, lo.low, hi.high) for lo, hi in zip(lows, highs, strict=True)]
        return sorted(out, key=lambda s: natural_key(s.key))
