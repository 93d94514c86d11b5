"""Decoding one dataset image to say what reading it involves: :func:`check_image`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

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
