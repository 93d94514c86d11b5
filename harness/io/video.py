"""Enhancing videos frame by frame (``llbench enhance --method M input.mp4 -o out.mp4``).

Frames are decoded with imageio's ffmpeg plugin (``imageio-ffmpeg`` ships the ffmpeg binary),
enhanced in batches by the method on its device, quantized to 8 bits exactly as image outputs
are, and encoded at the source's frame rate and size:

* codec: H.264 (``libx264``, CRF 18) for MP4/MOV/MKV/M4V/AVI, VP9 for WebM;
* pixel format ``yuv420p`` (playable everywhere) when width and height are even, else
  ``yuv444p``, because 4:2:0 cannot store odd sizes; frames are never resized
  (``macro_block_size=1``);
* the audio stream, if any, is copied unchanged when the output container is the same kind as
  the input's; otherwise it is dropped (the result says which);
* the output is written to a temporary file beside ``dst`` and renamed when complete.

Install the ``video`` extra (``pip install llbench[video]``) for imageio and imageio-ffmpeg.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from llbench.errors import LLBenchError, MethodOutputError

if TYPE_CHECKING:  # pragma: no cover
    from llbench.api.methods import Method

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm")
_CODECS = {".webm": "libvpx-vp9"}


class VideoError(LLBenchError):
    """A video that cannot be read or written."""


def is_video(path: str | Path) -> bool:
    """Whether ``path``'s suffix names a video container llbench enhances frame by frame."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _imageio():
    try:
        import imageio.v2 as iio
        import imageio_ffmpeg  # noqa: F401 - the plugin needs it
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise VideoError(
            "video enhancement needs imageio and imageio-ffmpeg: pip install 'llbench[video]'"
        ) from exc
    return iio


def enhance_video(
    method: Method,
    src: Path,
    dst: Path,
    *,
    batch_size: int = 4,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Enhance every frame of ``src`` with ``method`` and write the video ``dst``.

    ``progress(done, total)`` is called after each batch (``total`` is None when the frame
    count cannot be determined up front). Returns ``{"fps", "size": [width, height],
    "frames", "codec", "pixel_format", "audio", "seconds", "src", "dst"}``.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise VideoError(f"video not found: {src}")
    if not is_video(dst):
        raise VideoError(f"cannot write {dst}: use one of {', '.join(VIDEO_SUFFIXES)}")
    if batch_size < 1:
        raise VideoError("batch_size must be >= 1")
    iio = _imageio()
    try:
        reader = iio.get_reader(src, format="FFMPEG")
        meta = reader.get_meta_data()
    except Exception as exc:  # noqa: BLE001 - ffmpeg reports many kinds of failure
        raise VideoError(f"cannot read video {src}: {exc}") from exc
    fps = float(meta.get("fps") or 0.0)
    if not fps > 0:
        reader.close()
        raise VideoError(f"{src} has no frame rate in its metadata")
    try:
        total: int | None = int(reader.count_frames())
    except Exception:  # noqa: BLE001 - a count is only for the progress bar
        total = None

    frames = iter(reader)
    try:
        first = next(frames, None)
    except Exception as exc:  # noqa: BLE001
        reader.close()
        raise VideoError(f"cannot decode video {src}: {exc}") from exc
    if first is None:
        reader.close()
        raise VideoError(f"{src} has no frames")
    # The decoded frames decide the size (ffmpeg applies rotation metadata when decoding).
    height, width = first.shape[:2]
    suffix = dst.suffix.lower()
    codec = _CODECS.get(suffix, "libx264")
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    keep_audio = bool(meta.get("audio_codec")) and _container(src) == _container(dst)
    quality = ["-crf", "18"] if codec == "libx264" else ["-crf", "30", "-b:v", "0"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.partial{dst.suffix}")
    writer = iio.get_writer(
        tmp,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec=codec,
        pixelformat=pix_fmt,
        macro_block_size=1,
        quality=None,
        output_params=quality,
        ffmpeg_log_level="error",
        **({"audio_path": str(src), "audio_codec": "copy"} if keep_audio else {}),
    )

    started = time.perf_counter()
    done = 0
    batch: list[np.ndarray] = []

    def flush() -> None:
        nonlocal done
        for frame in _enhance_frames(method, batch):
            writer.append_data(frame)
        done += len(batch)
        batch.clear()
        if progress is not None:
            progress(done, total)

    ok = False
    try:
        for frame in itertools.chain([first], frames):
            if frame.shape[:2] != (height, width):
                raise VideoError(
                    f"{src}: frame {done + len(batch)} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"the first frame is {width}x{height}"
                )
            batch.append(np.ascontiguousarray(frame[..., :3]))
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
        ok = True
    finally:
        reader.close()
        try:
            writer.close()
        except Exception as exc:  # noqa: BLE001
            if ok:
                tmp.unlink(missing_ok=True)
                raise VideoError(f"cannot write video {dst}: {exc}") from exc
        if not ok:
            tmp.unlink(missing_ok=True)
    os.replace(tmp, dst)
    return {
        "fps": fps,
        "size": [width, height],
        "frames": done,
        "codec": codec,
        "pixel_format": pix_fmt,
        "audio": "copied" if keep_audio else ("dropped" if meta.get("audio_codec") else "none"),
        "seconds": round(time.perf_counter() - started, 3),
        "src": str(src),
        "dst": str(dst),
    }


def _container(path: Path) -> str:
    s = path.suffix.lower()
    return {".m4v": ".mp4", ".mov": ".mp4"}.get(s, s)


def _enhance_frames(method: Method, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Enhance a batch of H x W x 3 uint8 frames; return uint8 frames (rounded, clipped)."""
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).to(method.device)
    x = x.float().div_(255.0)
    with torch.inference_mode():
        y = method.enhance(x)
    if tuple(y.shape) != tuple(x.shape):
        raise MethodOutputError(
            f"{type(method).__name__} returned shape {tuple(y.shape)} for frames {tuple(x.shape)}"
        )
    if not torch.isfinite(y).all():
        raise MethodOutputError(f"{type(method).__name__} returned NaN or inf for a video frame")
    out = torch.round(y.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return list(out.permute(0, 2, 3, 1).cpu().numpy())
