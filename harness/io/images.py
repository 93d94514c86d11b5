"""Reading, converting, quantizing and writing images.

Every image llbench reads goes through :func:`read_image`, which makes each conversion explicit:

* greyscale (``L``, ``I;16``, ``1``) is replicated to three channels;
* alpha (``RGBA``, ``LA``, ``P`` with transparency) is composited over black and dropped;
* 16-bit data is scaled to 8 bits by ``round(v / 257)``;
* the EXIF orientation tag is applied, so the pixels are upright as a viewer shows them;
* truncated or corrupt files raise :class:`~llbench.errors.ImageError` naming the file;
* images with more than :func:`max_pixels` pixels (default 50 megapixels, set
  ``LLBENCH_MAX_PIXELS`` to change it, ``0`` for no limit) are refused from the file's header,
  before any pixel is decoded, so `run`, `enhance` and `score` never decode a decompression bomb
  or an image too large to process in bounded memory.

Enhanced images are quantized to 8 bits once (:func:`quantize`), saved as 8-bit PNG
(:func:`write_png`), and metrics score exactly those 8-bit values.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from llbench.errors import ImageError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Default largest image (width x height) llbench reads: 50 megapixels, above the largest
#: images of the supported datasets (MIT-Adobe FiveK's camera raws, about 24 MP) and of common
#: cameras, below Pillow's own decompression-bomb threshold (about 89 MP).
DEFAULT_MAX_PIXELS = 50_000_000


def max_pixels() -> int | None:
    """The pixel limit in force: ``LLBENCH_MAX_PIXELS`` (an integer; ``0`` = none) or
    :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get("LLBENCH_MAX_PIXELS", "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError as exc:
        raise ImageError(
            f"LLBENCH_MAX_PIXELS must be a whole number of pixels (0 for no limit), got {raw!r}"
        ) from exc
    return value if value > 0 else None


def check_size(width: int, height: int, path: str | Path) -> None:
    """Raise :class:`ImageError` when a ``width x height`` image exceeds :func:`max_pixels`."""
    limit = max_pixels()
    if limit is not None and width * height > limit:
        raise ImageError(
            f"{path} is {width} x {height} = {width * height / 1e6:.1f} megapixels, above "
            f"llbench's limit of {limit / 1e6:g} megapixels: downscale it, or raise the limit "
            f"with the environment variable LLBENCH_MAX_PIXELS (e.g. "
            f"LLBENCH_MAX_PIXELS={width * height}); metrics need about 30 bytes per pixel"
        )


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    if not folder.is_dir():
        raise ImageError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def read_image(path: str | Path) -> np.ndarray:
    """Read ``path`` as an ``H x W x 3`` uint8 RGB array (conversions in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            # llbench's own limit (checked from the header below) replaces Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                check_size(*im.size, path)
                im.load()
                im = ImageOps.exif_transpose(im)
                return _to_rgb8(im, path)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path} is too large to read safely: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        raise ImageError(f"cannot read image {path}: {exc}") from exc


def _to_rgb8(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        arr = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        arr = np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
        rgb = rgba[..., :3] * (rgba[..., 3:4] / 255.0)
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    if mode in ("L", "1"):
        arr = np.asarray(im.convert("L"), dtype=np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    if mode.startswith("RGB") or mode.startswith("BGR"):
        # e.g. 16-bit RGB TIFFs open as "RGB;16" variants on some Pillow builds
        arr = np.asarray(im)
        if arr.dtype == np.uint16:
            return np.clip(np.round(arr[..., :3] / 257.0), 0, 255).astype(np.uint8)
    raise ImageError(f"unsupported image mode {mode!r} in {path}")


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``1 x 3 x H x W`` float32 in [0, 1]."""
    import torch  # not at module import: listing datasets must not load torch

    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"expected an H x W x 3 uint8 array, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def quantize(t: torch.Tensor) -> torch.Tensor:
    """Round a [0, 1] float tensor to the nearest 8-bit level, staying float (k / 255)."""
    import torch  # not at module import: listing datasets must not load torch

    return torch.round(t.clamp(0.0, 1.0) * 255.0) / 255.0


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """``[1 x] 3 x H x W`` float in [0, 1] -> ``H x W x 3`` uint8 (rounded, clipped)."""
    import torch  # not at module import: listing datasets must not load torch

    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError("to_uint8 takes a single image")
        t = t[0]
    arr = torch.round(t.detach().clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


def write_png(path: str | Path, arr: np.ndarray) -> None:
    """Write an ``H x W x 3`` uint8 array as 8-bit PNG, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(arr).save(tmp, format="PNG")
    os.replace(tmp, path)


def write_image(path: str | Path, arr: np.ndarray) -> None:
    """Write uint8 RGB in the format the suffix names (PNG, JPEG quality 95, BMP, TIFF)."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        write_png(path, arr)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        path.suffix.lower()
    )
    if fmt is None:
        raise ImageError(f"cannot write {path}: use .png, .jpg, .bmp or .tif")
    Image.fromarray(arr).save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    os.replace(tmp, path)


def read_mask(path: str | Path) -> np.ndarray:
    """A label PNG (palette or greyscale) as an ``H x W`` int64 array of class indices.

    Palette images are read as their indices, never converted to colours; 255 means "ignore".
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            check_size(*im.size, path)
            if im.mode not in ("P", "L"):
                raise ImageError(
                    f"{path}: a mask must be a palette or greyscale PNG, not {im.mode}"
                )
            return np.asarray(im, dtype=np.uint8).astype(np.int64)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ImageError(f"cannot read mask {path}: {exc}") from exc
