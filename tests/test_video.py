"""Frame-by-frame video enhancement (llbench.io.video)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

iio = pytest.importorskip("imageio.v2")
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

from llbench.api.methods import Method  # noqa: E402
from llbench.errors import LLBenchError, MethodOutputError  # noqa: E402
from llbench.io.video import VideoError, enhance_video, is_video  # noqa: E402


class Brighten(Method):
    """x -> sqrt(x): brightens every frame, keeps the shape."""

    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        return low.sqrt()


class Broken(Method):
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        return low[..., :-1]


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


def _dark_video(path, *, size="64x48", fps=15, seconds=1.0, audio=False):
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=duration={seconds}"]
    w, h = (int(v) for v in size.split("x"))
    pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
    args += ["-vf", "eq=brightness=-0.45", "-c:v", "libx264", "-pix_fmt", pix]
    args += ["-c:a", "aac", "-shortest"] if audio else []
    _ffmpeg(*args, str(path))
    return path


def _frames(path):
    with iio.get_reader(path, format="FFMPEG") as r:
        return r.get_meta_data(), [f for f in r]


def test_keeps_fps_size_and_count_and_enhances(tmp_path):
    src = _dark_video(tmp_path / "in.mp4", size="64x48", fps=15, seconds=1.0)
    calls = []
    out = enhance_video(
        Brighten({}, "cpu"),
        src,
        tmp_path / "out.mp4",
        batch_size=4,
        progress=lambda d, t: calls.append((d, t)),
    )
    meta_in, frames_in = _frames(src)
    meta_out, frames_out = _frames(tmp_path / "out.mp4")
    assert out["fps"] == meta_in["fps"] == meta_out["fps"] == 15.0
    assert out["size"] == [64, 48] and tuple(meta_out["size"]) == (64, 48)
    assert out["frames"] == len(frames_in) == len(frames_out) == 15
    assert calls == [(4, 15), (8, 15), (12, 15), (15, 15)]
    # sqrt brightens: compare decoded frame means (lossy codec, so with a margin)
    for a, b in zip(frames_in, frames_out, strict=True):
        expected = np.sqrt(a / 255.0).mean() * 255
        assert b.mean() > a.mean() + 20
        assert abs(b.mean() - expected) < 4
    assert not list(tmp_path.glob(".*partial*"))


def test_odd_size_is_not_resized(tmp_path):
    src = _dark_video(tmp_path / "odd.mp4", size="65x49", fps=10, seconds=0.5)
    out = enhance_video(Brighten({}, "cpu"), src, tmp_path / "odd_out.mp4", batch_size=3)
    meta, frames = _frames(tmp_path / "odd_out.mp4")
    assert out["size"] == [65, 49] and out["pixel_format"] == "yuv444p"
    assert frames[0].shape == (49, 65, 3)
    assert len(frames) == out["frames"] == 5


def test_audio_is_copied_into_the_same_container_and_dropped_otherwise(tmp_path):
    src = _dark_video(tmp_path / "a.mp4", audio=True, seconds=0.5)
    out = enhance_video(Brighten({}, "cpu"), src, tmp_path / "b.mp4")
    assert out["audio"] == "copied"
    assert _frames(tmp_path / "b.mp4")[0].get("audio_codec") == "aac"
    out = enhance_video(Brighten({}, "cpu"), src, tmp_path / "b.mkv")
    assert out["audio"] == "dropped"
    assert "audio_codec" not in _frames(tmp_path / "b.mkv")[0]


def test_with_sgz(tmp_path):
    from llbench.plugins.sgz import DEFAULT_CONFIG, build

    torch.manual_seed(0)
    method = build(DEFAULT_CONFIG, torch.device("cpu"))
    src = _dark_video(tmp_path / "in.mp4", size="96x72", fps=12, seconds=0.5)
    out = enhance_video(method, src, tmp_path / "sgz.mp4", batch_size=2)
    meta, frames = _frames(tmp_path / "sgz.mp4")
    assert out["frames"] == len(frames) == 6
    assert meta["fps"] == 12.0 and tuple(meta["size"]) == (96, 72)


def test_errors(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        enhance_video(Brighten({}, "cpu"), tmp_path / "missing.mp4", tmp_path / "o.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(LLBenchError):
        enhance_video(Brighten({}, "cpu"), tmp_path / "junk.mp4", tmp_path / "o.mp4")
    src = _dark_video(tmp_path / "in.mp4", seconds=0.2)
    with pytest.raises(VideoError, match="cannot write"):
        enhance_video(Brighten({}, "cpu"), src, tmp_path / "o.png")
    with pytest.raises(MethodOutputError, match="shape"):
        enhance_video(Broken({}, "cpu"), src, tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()
    assert not list(tmp_path.glob(".*partial*"))
    assert is_video("x.MP4") and is_video("x.webm") and not is_video("x.png")
