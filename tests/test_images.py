"""Explicit image conversions and clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from llbench.errors import ImageError
from llbench.io.images import quantize, read_image, to_tensor, to_uint8, write_image, write_png


def test_grey_is_replicated(tmp_path):
    p = tmp_path / "g.png"
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20, "L").save(p)
    arr = read_image(p)
    assert arr.shape == (3, 4, 3) and (arr[..., 0] == arr[..., 2]).all() and arr[0, 1, 1] == 20


def test_rgba_composited_over_black(tmp_path):
    p = tmp_path / "a.png"
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = [[255, 0], [128, 255]]
    Image.fromarray(rgba, "RGBA").save(p)
    arr = read_image(p)
    assert arr[0, 0, 0] == 200 and arr[0, 1, 0] == 0 and arr[1, 0, 0] == round(200 * 128 / 255)


def test_16bit_scaled_to_8bit(tmp_path):
    p = tmp_path / "d.png"
    Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16)).save(p)
    arr = read_image(p)
    assert arr[0, :, 0].tolist() == [0, 100, 255]


def test_exif_rotation_applied(tmp_path):
    p = tmp_path / "r.jpg"
    img = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    img.save(p, exif=exif)
    assert read_image(p).shape == (20, 10, 3)


def test_truncated_file_names_the_file(tmp_path):
    p = tmp_path / "t.png"
    write_png(p, np.full((64, 64, 3), 7, np.uint8))
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(ImageError, match="t.png"):
        read_image(p)
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "missing.png")


def test_quantize_roundtrip(tmp_path):
    t = torch.rand(1, 3, 5, 7)
    q = quantize(t)
    assert torch.equal(torch.round(q * 255), q * 255)
    p = tmp_path / "q.png"
    write_png(p, to_uint8(t))
    assert torch.equal(to_tensor(read_image(p)), q)


@pytest.mark.parametrize("suffix", [".jpg", ".bmp", ".tif"])
def test_write_image_formats(tmp_path, suffix):
    arr = np.full((4, 4, 3), 120, np.uint8)
    write_image(tmp_path / f"x{suffix}", arr)
    assert abs(int(read_image(tmp_path / f"x{suffix}")[0, 0, 0]) - 120) <= 2
