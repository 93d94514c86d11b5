"""Building studies: from stored run outputs, or from any list of pairs or results.

A study is a list of items, each an image content id with one or two (condition, file) pairs, so
anything that produces pairs can feed it: :func:`create_study_from_runs` (every pair of methods on
every chosen test image, HiLLIE Sec. 4.4), :func:`create_study_from_pairs` (arbitrary pairs, e.g.
the pairs HiLLIE's training loop selects for its three annotators, Sec. 3.2.1 and Appendix B) and
:func:`add_pairs` (more pairs for an existing study, e.g. the next annotation round).

The images are copied (or hard-linked, which costs no space; the runner replaces files atomically,
so a link keeps the old content) into ``<home>/studies/<name>/images/`` under random names, with
their sha256 recorded: the study is an immutable snapshot that later runs cannot change, and the
server only ever serves files listed for the study.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from llbench.io.hashing import sha256_file
from llbench.store.database import Store
from llbench.study.model import (
    IMAGE_TYPES,
    KINDS,
    Item,
    PairSource,
    RatingSource,
    Study,
    StudyError,
    check_study_name,
    select_images,
)
from llbench.study.store import ImageRow, StudyStore

DEFAULT_TITLE = {
    "pairwise": "Which image looks better?",
    "rating": "How good does this image look?",
}
DEFAULT_INSTRUCTIONS = {
    "pairwise": (
        "Two versions of the same photo are shown side by side. Click the one with the higher "
        "visual quality, or press the left or right arrow key. Scroll over an image to zoom in, "
        "drag to pan, and press 0 to reset the view."
    ),
    "rating": (
        "Rate the visual quality of each image from 1 (bad) to 5 (excellent): click a rating or "
        "press its number key. Scroll over the image to zoom in, drag to pan, and press 0 to "
        "reset the view."
    ),
}
MAX_LABEL = 200


def _label(value: Any, what: str) -> str:
    s = str(value)
    if not s or len(s) > MAX_LABEL or any(ord(ch) < 32 for ch in s):
        raise StudyError(f"invalid {what} {value!r}: use 1-{MAX_LABEL} printable characters")
    return s


class _ImageSet:
    """Files of one study folder, deduplicated by (condition, content)."""

    def __init__(self, image_dir: Path, existing: dict[str, ImageRow], link: bool):
        self.dir = image_dir
        self.link = link
        self.by_key = {(r.condition, r.content): r for r in existing.values()}
        self.new: list[ImageRow] = []

    def add(self, condition: str, content: str, path: Path, expected_sha: str | None = None) -> str:
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in IMAGE_TYPES:
            raise StudyError(
                f"{path}: unsupported image type; studies show {', '.join(sorted(IMAGE_TYPES))}"
            )
        if not path.is_file():
            raise StudyError(f"image not found: {path}")
        digest = sha256_file(path)
        if expected_sha and digest != expected_sha:
            raise StudyError(
                f"{path} changed since its run recorded it (sha256 {digest[:12]} instead of "
                f"{expected_sha[:12]}); re-run that method with --force"
            )
        known = self.by_key.get((condition, content))
        if known is not None:
            if known.sha256 != digest:
                raise StudyError(
                    f"two different files for condition {condition!r} on content {content!r} "
                    f"({path} and an earlier one)"
                )
            return known.file
        file = secrets.token_hex(10) + suffix
        dst = self.dir / file
        if self.link:
            try:
                os.link(path, dst)
            except OSError:
                shutil.copyfile(path, dst)
        else:
            shutil.copyfile(path, dst)
        row = ImageRow(file, condition, content, digest, str(path))
        self.by_key[(condition, content)] = row
        self.new.append(row)
        return file


def _new_folder(home: Path, name: str) -> tuple[Path, Path]:
    studies = home / "studies"
    folder = studies / name
    if folder.exists():
        raise StudyError(
            f"{folder} exists but no study {name!r} is in the database; remove the folder or "
            "choose another name"
        )
    tmp = studies / f".{name}.tmp-{secrets.token_hex(4)}"
    (tmp / "images").mkdir(parents=True)
    return folder, tmp


def _create(
    home: str | Path,
    name: str,
    kind: str,
    entries: Sequence[PairSource] | Sequence[RatingSource],
    *,
    seed: int,
    title: str | None,
    instructions: str | None,
    batch: str,
    link: bool,
    source: dict[str, Any],
    conditions: dict[str, Any] | None,
    expected: dict[tuple[str, str], str] | None = None,
    scale: tuple[int, int] = (1, 5),
) -> Study:
    home = Path(home)
    check_study_name(name)
    if kind not in KINDS:
        raise StudyError(f"unknown study kind {kind!r}; use one of {', '.join(KINDS)}")
    lo, hi = int(scale[0]), int(scale[1])
    if not 0 <= lo < hi <= 10:
        raise StudyError(f"invalid rating scale {lo}-{hi}: use integers with 0 <= min < max <= 10")
    sstore = StudyStore(home)
    if sstore.get_study(name) is not None:
        raise StudyError(f"study {name!r} already exists; choose another name")
    if not entries:
        raise StudyError("a study needs at least one item")
    folder, tmp = _new_folder(home, name)
    try:
        images = _ImageSet(tmp / "images", {}, link)
        items = _build_items(images, kind, entries, batch, 0, set(), expected or {})
        conds = sorted({c for it in items for c in (it.cond_a, it.cond_b) if c})
        cond_sources = {c: (conditions or {}).get(c) for c in conds}
        study = Study(
            name=name,
            kind=kind,
            seed=int(seed),
            folder=folder,
            title=title or DEFAULT_TITLE[kind],
            instructions=instructions or DEFAULT_INSTRUCTIONS[kind],
            scale_min=lo,
            scale_max=hi,
            created=time.time(),
            source=source,
        )
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        sstore.insert_study(study, cond_sources, images.new, items)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return sstore.require_study(name)


def _build_items(
    images: _ImageSet,
    kind: str,
    entries: Iterable[PairSource] | Iterable[RatingSource],
    batch: str,
    start: int,
    seen: set[tuple[str, str, str]],
    expected: dict[tuple[str, str], str],
) -> list[Item]:
    items: list[Item] = []
    for entry in entries:
        if kind == "pairwise":
            if not isinstance(entry, PairSource):
                raise StudyError(f"a pairwise study takes PairSource entries, got {entry!r}")
            content = _label(entry.content, "content id")
            ca = _label(entry.condition_a, "condition")
            cb = _label(entry.condition_b, "condition")
            if ca == cb:
                raise StudyError(f"pair on {content!r} compares condition {ca!r} with itself")
            key = (content, *sorted((ca, cb)))
            if key in seen:
                continue
            seen.add(key)
            fa = images.add(ca, content, entry.path_a, expected.get((ca, content)))
            fb = images.add(cb, content, entry.path_b, expected.get((cb, content)))
            items.append(
                Item(secrets.token_hex(8), start + len(items), content, ca, fa, cb, fb, batch)
            )
        else:
            if not isinstance(entry, RatingSource):
                raise StudyError(f"a rating study takes RatingSource entries, got {entry!r}")
            content = _label(entry.content, "content id")
            c = _label(entry.condition, "condition")
            key = (content, c, "")
            if key in seen:
                continue
            seen.add(key)
            f = images.add(c, content, entry.path, expected.get((c, content)))
            items.append(
                Item(secrets.token_hex(8), start + len(items), content, c, f, None, None, batch)
            )
    return items


def create_study_from_pairs(
    home: str | Path,
    name: str,
    pairs: Iterable[PairSource],
    *,
    seed: int = 0,
    title: str | None = None,
    instructions: str | None = None,
    batch: str = "",
    link: bool = True,
    source: dict[str, Any] | None = None,
    conditions: dict[str, Any] | None = None,
) -> Study:
    """A pairwise study over arbitrary pairs (duplicates of an unordered pair are dropped).

    ``conditions`` may map condition ids to provenance stored with the study.
    """
    return _create(
        home,
        name,
        "pairwise",
        list(pairs),
        seed=seed,
        title=title,
        instructions=instructions,
        batch=batch,
        link=link,
        source=source or {"from": "pairs"},
        conditions=conditions,
    )


def create_rating_study(
    home: str | Path,
    name: str,
    entries: Iterable[RatingSource],
    *,
    seed: int = 0,
    title: str | None = None,
    instructions: str | None = None,
    scale: tuple[int, int] = (1, 5),
    batch: str = "",
    link: bool = True,
    source: dict[str, Any] | None = None,
    conditions: dict[str, Any] | None = None,
) -> Study:
    """A mean-opinion-score study: every entry is rated on ``scale`` (default 1-5)."""
    return _create(
        home,
        name,
        "rating",
        list(entries),
        seed=seed,
        title=title,
        instructions=instructions,
        batch=batch,
        link=link,
        source=source or {"from": "results"},
        conditions=conditions,
        scale=scale,
    )


def add_pairs(
    home: str | Path,
    name: str,
    pairs: Iterable[PairSource] | Iterable[RatingSource],
    *,
    batch: str = "",
    link: bool = True,
    conditions: dict[str, Any] | None = None,
) -> list[Item]:
    """Append items to an existing study (a running server picks them up at once).

    Pairs already in the study are skipped; returns the new items. Participants keep the order
    of what they have seen; new items are spread among the ones they have not answered yet.
    """
    home = Path(home)
    sstore = StudyStore(home)
    study = sstore.require_study(name)
    existing = sstore.items(name)
    seen = {
        (it.content, *sorted((it.cond_a, it.cond_b))) if it.cond_b else (it.content, it.cond_a, "")
        for it in existing
    }
    images = _ImageSet(study.image_dir, sstore.images(name), link)
    try:
        items = _build_items(
            images, study.kind, list(pairs), batch, sstore.next_position(name), seen, {}
        )
        conds = {c for it in items for c in (it.cond_a, it.cond_b) if c}
        sstore.add_parts(name, {c: (conditions or {}).get(c) for c in conds}, images.new, items)
    except BaseException:
        for row in images.new:
            (study.image_dir / row.file).unlink(missing_ok=True)
        raise
    return items


# --------------------------------------------------------------------------------------------
# from runs
# --------------------------------------------------------------------------------------------
def latest_finished_run(store: Store, method: str, dataset: str, split: str = "test"):
    """The most recently finished run of ``method`` on ``dataset``/``split`` (a ``runs`` row)."""
    rows = store.query(
        "SELECT * FROM runs WHERE method = ? AND dataset = ? AND split = ? AND status = 'finished' "
        "ORDER BY finished DESC, started DESC LIMIT 1",
        (method, dataset, split),
    )
    if rows:
        return rows[0]
    others = store.query(
        "SELECT status, COUNT(*) AS n FROM runs WHERE method = ? AND dataset = ? AND split = ? "
        "GROUP BY status",
        (method, dataset, split),
    )
    have = ", ".join(f"{r['n']} {r['status']}" for r in others)
    raise StudyError(
        f"no finished run of method {method!r} on dataset {dataset!r} (split {split!r})"
        + (f"; runs found: {have}" if have else "")
        + f". Run it first: llbench run --method {method} --dataset {dataset}"
    )


def _run_outputs(store: Store, home: Path, run_key: str) -> dict[str, tuple[Path, str | None]]:
    rows = store.query(
        "SELECT image, output, sha256 FROM items WHERE run_key = ? AND status = 'ok' "
        "AND output IS NOT NULL",
        (run_key,),
    )
    out = {}
    for r in rows:
        p = Path(r["output"])
        out[r["image"]] = (p if p.is_absolute() else home / p, r["sha256"])
    return out


def create_study_from_runs(
    home: str | Path,
    name: str,
    methods: Sequence[str],
    dataset: str,
    *,
    images: str = "all",
    seed: int = 0,
    split: str = "test",
    kind: str = "pairwise",
    title: str | None = None,
    instructions: str | None = None,
    link: bool = True,
) -> Study:
    """Every pair of ``methods`` (pairwise) or every method (rating) on every chosen image.

    For each method the latest finished run on ``dataset``/``split`` is used; the images are the
    sample keys with an ``ok`` output in all of those runs, in natural order, filtered by
    ``images`` (``all``, ``first:N``, ``last:N``, ``random:N`` or a comma-separated key list;
    HiLLIE uses ``first:40``).
    """
    home = Path(home)
    check_study_name(name)
    if StudyStore(home).get_study(name) is not None:
        raise StudyError(f"study {name!r} already exists; choose another name")
    methods = [m.strip() for m in methods if m and m.strip()]
    if len(set(methods)) != len(methods):
        raise StudyError(f"methods listed twice: {', '.join(methods)}")
    need = 2 if kind == "pairwise" else 1
    if len(methods) < need:
        raise StudyError(f"a {kind} study needs at least {need} methods, got {len(methods)}")
    store = Store(home)
    runs = {m: latest_finished_run(store, m, dataset, split) for m in methods}
    outputs = {m: _run_outputs(store, home, runs[m]["key"]) for m in methods}
    common = set.intersection(*(set(o) for o in outputs.values()))
    if not common:
        raise StudyError(
            f"no image of {dataset!r} has an output in every chosen run "
            f"({', '.join(f'{m}: {len(o)} images' for m, o in outputs.items())})"
        )
    keys = select_images(sorted(common), images, seed)
    expected = {(m, k): outputs[m][k][1] for m in methods for k in keys}
    if kind == "pairwise":
        entries: list = [
            PairSource(k, a, outputs[a][k][0], b, outputs[b][k][0])
            for k in keys
            for a, b in combinations(methods, 2)
        ]
    else:
        entries = [RatingSource(k, m, outputs[m][k][0]) for k in keys for m in methods]
    source = {
        "from": "runs",
        "dataset": dataset,
        "split": split,
        "images": images,
        "methods": methods,
        "runs": {m: runs[m]["key"] for m in methods},
        "contents": keys,
    }
    conditions = {
        m: {
            "run": runs[m]["key"],
            "dataset": dataset,
            "split": split,
            "out_dir": runs[m]["out_dir"],
        }
        for m in methods
    }
    return _create(
        home,
        name,
        kind,
        entries,
        seed=seed,
        title=title,
        instructions=instructions,
        batch="",
        link=link,
        source=source,
        conditions=conditions,
        expected=expected,
    )
