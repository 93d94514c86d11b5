"""Per-image material of a report: each row's saved output, the input and the ground truth of
chosen test images, with their per-image scores.

The grids of :func:`llbench.reports.figures.gallery_grid` and the HTML report's gallery read a
:class:`Gallery` per dataset. A row with several seeds shows the outputs of its first seed
(lowest seed number); its scores are that run's. Inputs and ground truths come from the dataset
plugin (when the data is on disk); otherwise the gallery shows the outputs alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from llbench import paths
from llbench.errors import ConfigError
from llbench.store.database import Store


@dataclass
class Gallery:
    dataset: str
    split: str
    rows: list[str]
    images: list[str]
    outputs: dict[str, dict[str, Path]] = field(default_factory=dict)
    inputs: dict[str, Path] = field(default_factory=dict)
    references: dict[str, Path] = field(default_factory=dict)
    scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def tiles(self, image: str) -> list[tuple[str, Path]]:
        """(title, file) of the input, every row's output and the ground truth of ``image``."""
        out: list[tuple[str, Path]] = []
        if image in self.inputs:
            out.append(("Input", self.inputs[image]))
        for label in self.rows:
            p = self.outputs.get(label, {}).get(image)
            if p is not None:
                out.append((label, p))
        if image in self.references:
            out.append(("Ground truth", self.references[image]))
        return out


def collect_gallery(
    frame: pd.DataFrame,
    *,
    home: str | Path | None = None,
    images: Sequence[str] | None = None,
    limit: int | None = 3,
    data_root: str | Path | None = None,
) -> list[Gallery]:
    """One :class:`Gallery` per dataset of ``frame`` (the long frame of a report).

    ``images`` names the images to show (keys or file stems, in that order; an unknown name is
    an error listing a few known ones); otherwise the first ``limit`` images (natural order)
    that every row has, or all of them with ``limit=None``.
    """
    from llbench.api.datasets import natural_key

    home_dir = paths.home(home)
    store = Store(home_dir)
    out: list[Gallery] = []
    if frame.empty:
        return out
    frame = frame[frame["run_key"].notna()]
    if "kind" in frame:  # reference rows' outputs are the input, shown as its own tile
        frame = frame[frame["kind"] == "measured"]
    for column_dataset, sub in frame.groupby("dataset", sort=True):
        dataset, _, split = str(column_dataset).partition("[")
        split = split.rstrip("]") or "test"
        g = Gallery(dataset, split, [], [])
        for label, rsub in sub.groupby("label", sort=False):
            keys = list(dict.fromkeys(rsub["run_key"]))
            key = _first_seed(store, keys)
            found = {
                r["image"]: home_dir / r["output"]
                for r in store.items(key)
                if r["status"] == "ok" and r["output"]
            }
            found = {k: p for k, p in found.items() if p.is_file()}
            if not found:
                continue
            g.rows.append(str(label))
            g.outputs[str(label)] = found
            per: dict[str, dict[str, float]] = {}
            for r in store.image_values([key]):
                per.setdefault(r["image"], {})[r["metric"]] = float(r["value"])
            g.scores[str(label)] = per
        if not g.rows:
            continue
        order = list(dict.fromkeys(frame["label"]))
        g.rows.sort(key=order.index)
        common = set.intersection(*(set(g.outputs[r]) for r in g.rows))
        every = sorted(set().union(*(set(g.outputs[r]) for r in g.rows)), key=natural_key)
        if images:
            chosen = [_match_image(name, every, dataset) for name in images]
            chosen = [c for c in chosen if c is not None]
        else:
            pool = sorted(common, key=natural_key) or every
            chosen = pool if limit is None else pool[:limit]
        g.images = chosen
        _attach_data(g, home_dir, data_root)
        out.append(g)
    if images and not any(g.images for g in out):
        raise ConfigError(f"none of the images {', '.join(images)} is in the runs shown")
    return out


def _match_image(name: str, known: list[str], dataset: str) -> str | None:
    stem = Path(name).stem
    for k in known:
        if k == name or k == stem or Path(k).stem == stem:
            return k
    lowered = {k.lower(): k for k in known}
    if stem.lower() in lowered:
        return lowered[stem.lower()]
    return None


def _first_seed(store: Store, keys: list[str]) -> str:
    if len(keys) == 1:
        return keys[0]
    seeds = []
    for k in keys:
        row = store.get_run(k)
        seeds.append((row["seed"] if row is not None and row["seed"] is not None else 0, k))
    return min(seeds)[1]


def _attach_data(g: Gallery, home: Path, data_root: str | Path | None) -> None:
    """Input and ground-truth files of the chosen images, from the dataset plugin."""
    from llbench.pluginhost.host import get_host

    try:
        host = get_host()
        spec = host.dataset(g.dataset)
        root = paths.data_root(data_root, home)
        samples = {s.key: s for s in spec.build(root).samples(g.split)}
    except Exception:  # noqa: BLE001 - the data may be gone; the outputs still show
        return
    for image in g.images:
        s = samples.get(image)
        if s is None:
            continue
        if s.low is not None and Path(s.low).is_file():
            g.inputs[image] = Path(s.low)
        if s.high is not None and Path(s.high).is_file():
            g.references[image] = Path(s.high)
