"""``llbench enhance``: run a method on arbitrary image files, folders or videos."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llbench.api.methods import Method
from llbench.engine.execute import checked_enhance
from llbench.errors import ImageError, LLBenchError
from llbench.io.images import is_image_file, read_image, to_tensor, to_uint8, write_image

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@dataclass
class EnhanceOutcome:
    source: Path
    output: Path | None
    error: str | None = None


def collect_inputs(inputs: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """(file, path relative to its input root) for every image or video named or found."""
    out: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if is_image_file(f) or f.suffix.lower() in VIDEO_SUFFIXES:
                    out.append((f, f.relative_to(p)))
        elif p.is_file():
            out.append((p, Path(p.name)))
        else:
            raise ImageError(f"input not found: {p}")
    if not out:
        raise ImageError("no images or videos found in the inputs")
    return out


def enhance_files(
    meth: Method,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    suffix: str = ".png",
    on_file: Callable[[EnhanceOutcome], None] | None = None,
) -> list[EnhanceOutcome]:
    """Enhance each input into ``out_dir`` keeping relative paths; one failure never stops the rest."""
    out_dir = Path(out_dir)
    outcomes = []
    for src, rel in collect_inputs(inputs):
        try:
            if src.suffix.lower() in VIDEO_SUFFIXES:
                from llbench.io.video import enhance_video

                dst = out_dir / rel
                enhance_video(meth, src, dst)
            else:
                dst = (out_dir / rel).with_suffix(suffix)
                low = to_tensor(read_image(src)).to(meth.device)
                out = checked_enhance(meth, low)
                write_image(dst, to_uint8(out))
            outcome = EnhanceOutcome(src, dst)
        except LLBenchError as exc:
            outcome = EnhanceOutcome(src, None, str(exc))
        outcomes.append(outcome)
        if on_file is not None:
            on_file(outcome)
    return outcomes
