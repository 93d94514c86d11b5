"""Issue 20 defect 2: bounded memory for any image size.

Metrics work on bands of rows (same values as on the whole image), shown under an address-space
limit (RLIMIT_AS) in a subprocess; images above the pixel limit are refused from their header.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from llbench.errors import ImageError
from llbench.io.images import DEFAULT_MAX_PIXELS, read_image, read_mask, write_png
from llbench.metrics import _resize, sgz_ref, skimage_ssim
from llbench.metrics import functional as F
from llbench.metrics import matlab as MM
from llbench.metrics.skimage_ssim import ssim_skimage

resource = pytest.importorskip("resource")

METRICS = {
    "psnr": lambda p, r: F.psnr(p, r),
    "psnr_y": lambda p, r: F.psnr_y(p, r),
    "mse": lambda p, r: F.mse(p, r),
    "ssim": lambda p, r: F.ssim(p, r),
    "ssim_rgb": lambda p, r: F.ssim_rgb(p, r),
    "psnr_gtmean": lambda p, r: F.psnr_gtmean(p, r),
    "ssim_gtmean": lambda p, r: F.ssim_gtmean(p, r),
    "ssim_rgb_gtmean": lambda p, r: F.ssim_rgb_gtmean(p, r),
    "ssim_skimage": lambda p, r: ssim_skimage(p, r),
    "ssim_sgz": lambda p, r: sgz_ref.ssim_sgz(p, r),
    "ssim_matlab": lambda p, r: MM.ssim_matlab(p, r),
    "niqe": lambda p, r: F.niqe(p),
    "loe": lambda p, r: F.loe(p, r),
}


def _pair(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, h // 8 + 1, w // 8 + 1, generator=g)
    smooth = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear")
    noise = torch.rand(n, 3, h, w, generator=g) * 0.1
    pred = (smooth * 0.9 + noise).clamp(0, 1)
    ref = (pred * 0.7 + 0.2 * torch.rand(n, 3, h, w, generator=g)).clamp(0, 1)
    return pred, ref


@pytest.mark.parametrize("size", [(2, 200, 290), (1, 530, 610)])
def test_bands_give_the_values_of_the_whole_image(monkeypatch, size):
    pred, ref = _pair(*size)
    whole = {k: fn(pred, ref) for k, fn in METRICS.items()}
    monkeypatch.setattr(F, "TILE_ELEMENTS", 6000)  # a few rows per band
    monkeypatch.setattr(skimage_ssim, "_CPU_BAND_ELEMENTS", 6000)  # its minimum: 16 rows
    monkeypatch.setattr(_resize, "_GATHER_ELEMENTS", 20000)
    for name, fn in METRICS.items():
        banded = fn(pred, ref)
        torch.testing.assert_close(banded, whole[name], rtol=1e-12, atol=1e-12, msg=name)
    assert F.psnr(pred, ref).tolist() == whole["psnr"].tolist()  # integer sums: exact


def test_bands_cover_every_row_once():
    assert list(F.bands(10, 3, budget=9)) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert list(F.bands(4, 10**9, budget=9)) == [(0, 1), (1, 2), (2, 3), (3, 4)]


SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import torch
    from llbench.metrics import functional as F

    h, w, budget = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) << 20
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8, generator=g).float() / 255
    ref = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8, generator=g).float() / 255
    small = pred[..., :128, :128].contiguous()
    for fn in (F.psnr, F.ssim, F.loe):  # load every kernel before the limit
        fn(small, small)
    F.niqe(small)
    vm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize")]
    limit = vm[0] * 1024 + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:  # the limit bites: the old one-shot SSIM (stack and statistics) would not fit
        torch.empty(10 * h * w, dtype=torch.float64)
        print("LIMIT-NOT-ENFORCED")
    except (MemoryError, RuntimeError):
        print("limit enforced")
    print("psnr", float(F.psnr(pred, ref)))
    print("ssim", float(F.ssim(pred, ref)))
    print("loe", float(F.loe(pred, ref)))
    print("niqe", float(F.niqe(pred)))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_metrics_of_a_large_image_fit_a_fixed_memory_budget(tmp_path):
    """A 6-megapixel pair (72 MB per float image) scored with 320 MB of address space beyond
    what the inputs and the loaded libraries take; SSIM of the whole image at once held 480 MB."""
    script = tmp_path / "bounded.py"
    script.write_text(SCRIPT)
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, str(script), "2400", "2500", "320"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.strip().splitlines())
    assert "limit" in out and out["limit"] == "enforced"
    assert 7.0 < float(out["psnr"]) < 8.5  # independent uniform levels: about 7.7 dB
    assert 0.0 < float(out["ssim"]) < 0.2
    assert float(out["loe"]) > 0 and np.isfinite(float(out["niqe"]))


# -- the pixel limit -----------------------------------------------------------------------------
def _big_png(path, w=8000, h=7000):
    Image.new("1", (w, h), 1).save(path)  # 56 MP, a few kB on disk
    return path


def test_images_above_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    assert DEFAULT_MAX_PIXELS == 50_000_000
    big = _big_png(tmp_path / "big.png")
    with pytest.raises(ImageError, match="8000 x 7000 = 56.0 megapixels.*LLBENCH_MAX_PIXELS"):
        read_image(big)
    write_png(tmp_path / "small.png", np.zeros((60, 80, 3), np.uint8))
    monkeypatch.setenv("LLBENCH_MAX_PIXELS", "4000")
    with pytest.raises(ImageError, match="80 x 60"):
        read_image(tmp_path / "small.png")
    Image.new("L", (80, 60)).save(tmp_path / "mask.png")
    with pytest.raises(ImageError, match="above llbench's limit"):
        read_mask(tmp_path / "mask.png")
    monkeypatch.setenv("LLBENCH_MAX_PIXELS", "0")  # no limit
    assert read_image(tmp_path / "small.png").shape == (60, 80, 3)
    monkeypatch.setenv("LLBENCH_MAX_PIXELS", "lots")
    with pytest.raises(ImageError, match="whole number"):
        read_image(tmp_path / "small.png")


def test_score_and_enhance_refuse_a_huge_image_cleanly(home, tmp_path, monkeypatch):
    from llbench.cli.main import cli

    monkeypatch.setenv("LLBENCH_PLUGINS", "core-metrics,input")
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir()
    ref.mkdir()
    _big_png(pred / "a.png")
    _big_png(ref / "a.png")
    write_png(pred / "b.png", np.full((16, 16, 3), 9, np.uint8))
    write_png(ref / "b.png", np.full((16, 16, 3), 9, np.uint8))
    r = CliRunner().invoke(cli, ["score", "--metrics", "psnr", "--ref", str(ref), str(pred)])
    assert r.exit_code == 1 and "megapixels" in r.output and "80.00" in r.output
    r = CliRunner().invoke(cli, ["enhance", "-m", "input", "-o", str(tmp_path / "o"), str(pred)])
    assert r.exit_code == 1 and "megapixels" in r.output
    assert (tmp_path / "o" / "b.png").is_file() and not (tmp_path / "o" / "a.png").exists()
