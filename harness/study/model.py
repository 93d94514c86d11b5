"""What a study is, and how each participant's sequence of trials is randomised.

A study (HiLLIE, Sec. 4.4 and Appendix D) is a list of *items*. A pairwise item shows two
results of the same image content (conditions A and B) side by side and asks which is better
(two-alternative forced choice); a rating item shows one result to be scored on a 1-5 scale
(SLLEN Sec. III-E3, SGZ Sec. 4.6). HiLLIE takes every pair of the 9 compared methods on the first
40 LOLv2-real test images, 40 x 36 = 1440 pairs per participant, "anonymized and randomized".

Randomisation here is per participant and deterministic: each item gets a key and a side bit from
``sha256(seed, participant, item)``; the participant sees the items in key order, with A and B
swapped where the bit is set. The same participant always gets the same sequence (a reload or a
later visit continues where they stopped), different participants get independent orders and
sides, and items appended later (HiLLIE's annotation rounds) slot in without reshuffling what a
participant has already seen. Participants never see condition names, file names or content ids:
images are served under random tokens and items under random ids.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llbench.errors import LLBenchError

KINDS = ("pairwise", "rating")
# \Z, not $: "$" also matches before a final newline, which would let "alice\n" through.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
PARTICIPANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


class StudyError(LLBenchError):
    """A study that does not exist, cannot be built, or is asked something it cannot do."""


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise StudyError(
            f"invalid study name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def check_participant(participant: Any) -> str:
    if not isinstance(participant, str) or not PARTICIPANT_RE.match(participant):
        raise StudyError(
            "invalid participant id: use 1-64 letters, digits, '_', '-', '.' or '@', "
            "starting with a letter or digit"
        )
    return participant


@dataclass(frozen=True)
class PairSource:
    """One pair to compare: two results (files) of the same content under two conditions."""

    content: str
    condition_a: str
    path_a: Path
    condition_b: str
    path_b: Path


@dataclass(frozen=True)
class RatingSource:
    """One result to rate."""

    content: str
    condition: str
    path: Path


@dataclass(frozen=True)
class Item:
    """A stored item; ``cond_b``/``file_b`` are ``None`` for rating items."""

    item: str
    position: int
    content: str
    cond_a: str
    file_a: str
    cond_b: str | None = None
    file_b: str | None = None
    batch: str = ""


@dataclass(frozen=True)
class Trial:
    """An item as one participant sees it: ``swapped`` puts condition B on the left."""

    item: Item
    swapped: bool

    @property
    def left(self) -> tuple[str, str]:
        """(condition, file) shown on the left (or alone, for ratings)."""
        it = self.item
        if it.cond_b is None or not self.swapped:
            return it.cond_a, it.file_a
        return it.cond_b, it.file_b  # type: ignore[return-value]

    @property
    def right(self) -> tuple[str, str] | None:
        it = self.item
        if it.cond_b is None:
            return None
        if self.swapped:
            return it.cond_a, it.file_a
        return it.cond_b, it.file_b  # type: ignore[return-value]


@dataclass
class Study:
    name: str
    kind: str
    seed: int
    folder: Path
    title: str = ""
    instructions: str = ""
    scale_min: int = 1
    scale_max: int = 5
    created: float = 0.0
    source: dict = field(default_factory=dict)

    @property
    def image_dir(self) -> Path:
        return self.folder / "images"


def _digest(seed: int, participant: str, item: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{participant}\x00{item}".encode()).digest()


def participant_schedule(seed: int, participant: str, items: Sequence[Item]) -> list[Trial]:
    """The order and sides in which ``participant`` sees ``items`` (see the module docstring)."""
    keyed = []
    for it in items:
        h = _digest(seed, participant, it.item)
        keyed.append((h[:8], it.position, Trial(it, bool(h[8] & 1) and it.cond_b is not None)))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [t for _, _, t in keyed]


def trial_for(seed: int, participant: str, item: Item) -> Trial:
    h = _digest(seed, participant, item.item)
    return Trial(item, bool(h[8] & 1) and item.cond_b is not None)


_NUM = re.compile(r"(\d+)")


def natural_key(s: str) -> tuple:
    """Sort key putting ``img2`` before ``img10`` (HiLLIE: "in numerical order")."""
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in _NUM.split(s) if p)


def select_images(keys: Sequence[str], spec: str | None, seed: int = 0) -> list[str]:
    """Choose image keys, in natural order: ``all``, ``first:N``, ``last:N``, ``random:N``
    (seeded), or a comma-separated list of keys."""
    ordered = sorted(dict.fromkeys(keys), key=natural_key)
    spec = (spec or "all").strip()
    if spec == "all":
        return ordered
    m = re.fullmatch(r"(first|last|random):(\d+)", spec)
    if m:
        mode, n = m.group(1), int(m.group(2))
        if n <= 0:
            raise StudyError(f"--images {spec}: the count must be positive")
        if n > len(ordered):
            raise StudyError(
                f"--images {spec}: only {len(ordered)} images are present in every chosen run"
            )
        if mode == "first":
            return ordered[:n]
        if mode == "last":
            return ordered[-n:]
        chosen = set(random.Random(seed).sample(ordered, n))
        return [k for k in ordered if k in chosen]
    wanted = [k.strip() for k in spec.split(",") if k.strip()]
    missing = [k for k in wanted if k not in set(ordered)]
    if missing:
        raise StudyError(
            f"image(s) {', '.join(missing)} are not present in every chosen run; "
            "use all, first:N, last:N, random:N or existing keys"
        )
    return sorted(dict.fromkeys(wanted), key=natural_key)
