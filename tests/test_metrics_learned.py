"""Learned metrics over pyiqa: the real loading path with locally generated weight files of the
right format in a temporary cache, the unavailable path without any network access, the weights
CLI, and calibration against pyiqa's published values when the official weights are present."""

from __future__ import annotations

import http.server
import socket
import sys
import threading
from pathlib import Path

import learned_fixtures as F
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from llbench.errors import WeightsError
from llbench.io import weights as W
from llbench.metrics import learned as L

FAST = ["nrqm", "pi", "musiq", "lpips", "brisque", "unique", "clipiqa"]


@pytest.fixture(autouse=True)
def _pyiqa_follows_the_environment(monkeypatch):
    """pyiqa fixes its folder at import (from TORCH_HOME at that moment); keep it in step with
    the environment of each test, as it is in a process that sets TORCH_HOME before starting."""
    import os

    mod = sys.modules.get("pyiqa.utils.download_util")
    if mod is not None:
        monkeypatch.setattr(mod, "DEFAULT_CACHE_DIR", os.path.join(torch.hub.get_dir(), "pyiqa"))


@pytest.fixture
def cache(tmp_path, monkeypatch, _pyiqa_follows_the_environment):
    """An empty torch hub and Hugging Face cache; pyiqa's and huggingface_hub's import-time
    folders follow it when those packages are already imported."""
    torch_home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("LLBENCH_CACHE", str(tmp_path / "llbench-cache"))
    mod = sys.modules.get("pyiqa.utils.download_util")
    if mod is not None:
        monkeypatch.setattr(mod, "DEFAULT_CACHE_DIR", str(torch_home / "hub" / "pyiqa"))
    consts = sys.modules.get("huggingface_hub.constants")
    if consts is not None:
        monkeypatch.setattr(consts, "HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything opens a network connection."""

    def refuse(self, address):
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _spec(name):
    return L.make_spec(next(d for d in L._SPECS if d["name"] == name))


def _images(n=2, h=104, w=104, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.rand(n, 3, h, w, generator=g) * 255) / 255


def _pyiqa_score(name, x, ref=None):
    pyiqa = L.import_pyiqa()
    with L.hub_offline_default():
        m = pyiqa.create_metric(name, device="cpu")
    with torch.inference_mode():
        out = m(x, ref) if ref is not None else m(x)
    return out.reshape(-1).double()


# -- unavailable ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", L.metric_names())
def test_missing_weights_are_named_with_folder_and_url(cache, no_network, name):
    spec = _spec(name)
    msg = spec.available()
    assert msg is not None
    for wf in W.files_for(name):
        assert wf.filename in msg and wf.url in msg
        assert str(cache) in msg  # the folder inside the (temporary) cache
    # building fails at once with the same facts, before any download attempt
    with pytest.raises(WeightsError) as exc:
        spec.build(torch.device("cpu"), {})
    assert W.files_for(name)[0].filename in str(exc.value)


def test_registered_through_the_plugin_host(home, cache):
    from llbench.pluginhost.host import get_host

    reg = get_host().registry("metric")
    for name in L.metric_names():
        spec = reg.get(name)
        assert spec.needs >= {"weights"}
        assert spec.available() is not None  # nothing in the temporary cache
    assert reg.get("lpips").kind == "full-reference" and "reference" in reg.get("lpips").needs
    assert not reg.get("pi").higher_better and reg.get("musiq").higher_better


# -- the real loading path -----------------------------------------------------------------------
@pytest.mark.parametrize("name", FAST)
def test_runs_from_cache_and_matches_pyiqa(cache, no_network, monkeypatch, name):
    from llbench.io.weights import missing_packages

    if missing_packages(name):
        pytest.skip(f"{name} needs the optional package(s) {missing_packages(name)}")
    paths = F.WRITERS[name]()
    if name == "clipiqa":
        F.trust(monkeypatch, "RN50.pt", paths[0])
    assert _spec(name).available() is None
    metric = _spec(name).build(torch.device("cpu"), {})
    x, ref = _images(), _images(seed=1)
    ours = metric(x, ref if name == "lpips" else None)
    assert ours.shape == (2,) and torch.isfinite(ours).all()
    if name == "clipiqa":
        # pyiqa's create_metric would insist on OpenAI's sha256; build its class on the file
        from pyiqa.archs.clipiqa_arch import CLIPIQA

        with torch.inference_mode():
            theirs = CLIPIQA(backbone=str(paths[0]))(x).reshape(-1).double()
    else:
        theirs = _pyiqa_score(name, x, ref if name == "lpips" else None)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_nima_runs_from_cache_and_matches_pyiqa(cache, no_network):
    F.WRITERS["nima"]()
    assert _spec("nima").available() is None
    x = _images(h=120, w=160)
    ours = _spec("nima").build(torch.device("cpu"), {})(x)
    torch.testing.assert_close(ours, _pyiqa_score("nima", x), rtol=1e-5, atol=1e-6)


def test_batches_agree_with_single_images(cache):
    F.write_musiq()
    metric = _spec("musiq").build(torch.device("cpu"), {"metric_batch_size": 2})
    x = _images(n=3, h=96, w=128)
    batched = metric(x)
    single = torch.cat([metric(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)


def test_checkpoint_that_does_not_fit_is_refused(cache):
    path = W.FILES["musiq_koniq_ckpt-e95806b9.pth"].path()
    path.parent.mkdir(parents=True)
    torch.save({"conv_root.weight": torch.zeros(3)}, path)
    with pytest.raises(WeightsError, match="does not fit"):
        _spec("musiq").build(torch.device("cpu"), {})


def test_pickle_with_code_is_refused_before_pyiqa_opens_it(cache):
    import argparse

    path = W.FILES["brisque_svm_weights.pth"].path()
    path.parent.mkdir(parents=True)
    # a Namespace is not on torch's weights_only allow-list: loading it needs full unpickling,
    # which pyiqa's own torch.load(weights_only=False) would do
    torch.save((argparse.Namespace(a=1), torch.zeros(3, 36)), path)
    with pytest.raises(WeightsError, match="weights_only=True"):
        _spec("brisque").build(torch.device("cpu"), {})


def test_pi_takes_niqe_parameters_from_the_cache_or_the_shipped_npz(cache, monkeypatch):
    import scipy.io

    F.write_nrqm_mat()
    mat = F.write_niqe_mat()
    net = _spec("pi").build(torch.device("cpu"), {}).net
    expected = np.ravel(scipy.io.loadmat(mat)["mu_prisparam"])
    np.testing.assert_array_equal(net.niqe.mu_pris_param.numpy(), expected)

    # without pyiqa's file, the pristine model llbench ships is converted once and used
    mat.unlink()
    npz = L._shipped_niqe_npz()  # harness/metrics/data/niqe_pris_params.npz
    if npz is None:
        npz = Path(__file__).resolve().parents[2] / "shared" / "data" / "niqe_pris_params.npz"
        if not npz.is_file():
            pytest.skip("no niqe_pris_params.npz shipped or beside the checkout")
        monkeypatch.setattr(L, "_shipped_niqe_npz", lambda: npz)
    assert _spec("pi").available() is None
    net = _spec("pi").build(torch.device("cpu"), {}).net
    with np.load(npz) as z:
        np.testing.assert_array_equal(net.niqe.mu_pris_param.numpy(), np.ravel(z["mu_pris_param"]))
        np.testing.assert_array_equal(net.niqe.cov_pris_param.numpy(), z["cov_pris_param"])


# -- configuration against the libraries' own sources ----------------------------------------------
def test_file_table_matches_pyiqa_and_torchvision():
    L.import_pyiqa()
    from pyiqa.archs import (
        brisque_arch,
        lpips_arch,
        musiq_arch,
        nima_arch,
        niqe_arch,
        nrqm_arch,
        unique_arch,
    )
    from pyiqa.archs.clip_model import _MODELS
    from torchvision.models import AlexNet_Weights, ResNet34_Weights

    urls = {
        "NRQM_model.mat": nrqm_arch.default_model_urls["url"],
        "niqe_modelparameters.mat": niqe_arch.default_model_urls["url"],
        "musiq_koniq_ckpt-e95806b9.pth": musiq_arch.default_model_urls["koniq10k"],
        "LPIPS_v0.1_alex-df73285e.pth": lpips_arch.default_model_urls["0.1_alex"],
        "brisque_svm_weights.pth": brisque_arch.default_model_urls["url"],
        "UNIQUE.pt": unique_arch.default_model_urls["mix"],
        "NIMA_InceptionV2_ava-b0c77c00.pth": nima_arch.default_model_urls[
            "inception_resnet_v2-ava"
        ],
        "alexnet-owt-7be5be79.pth": AlexNet_Weights.IMAGENET1K_V1.url,
        "resnet34-b627a593.pth": ResNet34_Weights.IMAGENET1K_V1.url,
        "RN50.pt": _MODELS["RN50"],
    }
    for filename, url in urls.items():
        assert W.FILES[filename].url == url, filename
    assert W.FILES["RN50.pt"].sha256 == _MODELS["RN50"].split("/")[-2]


def test_hub_offline_default_respects_the_user(monkeypatch):
    import os

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with L.hub_offline_default():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with L.hub_offline_default():
        assert os.environ["HF_HUB_OFFLINE"] == "0"


# -- llbench weights -------------------------------------------------------------------------------
def test_import_places_files_and_checks_hashes(cache, tmp_path):
    src = tmp_path / "downloads"
    F.write_nrqm_mat(src / "NRQM_model.mat")
    placed = W.import_files([src / "NRQM_model.mat"])
    assert placed[0].dest == W.FILES["NRQM_model.mat"].path() and placed[0].dest.is_file()
    assert not placed[0].verified and _spec("nrqm").available() is None

    # a file whose content does not match the hash prefix in its official name
    fake = src / "musiq_koniq_ckpt-e95806b9.pth"
    torch.save({"a": torch.zeros(1)}, fake)
    with pytest.raises(WeightsError, match="e95806b9"):
        W.import_files([fake])
    assert not W.FILES[fake.name].present()

    bad = src / "brisque_svm_weights.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a valid"):
        W.import_files([bad])
    # one unknown file in a batch: nothing of the batch is placed
    placed[0].dest.unlink()
    with pytest.raises(WeightsError, match="not a weight file llbench knows"):
        W.import_files([src / "NRQM_model.mat", _write(src / "other.pth")])
    assert not W.FILES["NRQM_model.mat"].present()


def _write(path: Path) -> Path:
    path.write_bytes(b"x")
    return path


def test_import_into_the_hugging_face_layout(cache, tmp_path):
    from safetensors.torch import save_file

    src = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(2)}, str(src))
    (placed,) = W.import_files([src])
    wf = W.FILES["model.safetensors"]
    assert placed.dest == wf.path() and wf.present()
    rev = (W.hf_repo_dir(wf.hf_repo) / "refs" / "main").read_text()
    assert placed.dest.parent.name == rev and len(rev) == 40
    # huggingface_hub itself resolves it offline from there
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(wf.hf_repo, wf.filename, cache_dir=str(W.hf_hub_cache()))
    assert found == str(placed.dest)


def test_fetch_downloads_and_verifies(cache, monkeypatch, tmp_path):
    import dataclasses

    served = tmp_path / "served"
    served.mkdir()
    F.write_brisque()
    good = W.FILES["brisque_svm_weights.pth"].path()
    (served / good.name).write_bytes(good.read_bytes())
    good.unlink()

    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(served), **k
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{good.name}"
        wf = W.FILES[good.name]
        monkeypatch.setitem(W.FILES, good.name, dataclasses.replace(wf, url=url))
        (placed,) = W.fetch("brisque")
        assert placed.dest == good and good.is_file()
        assert W.fetch("brisque") == []  # present: nothing to do
        # a server file that is not the published one is rejected and not placed
        monkeypatch.setitem(W.FILES, good.name, dataclasses.replace(wf, url=url, sha256="0" * 64))
        good.unlink()
        with pytest.raises(Exception, match="sha256|checksum"):
            W.fetch("brisque")
        assert not good.exists()
    finally:
        server.shutdown()


def test_weights_cli(cache, tmp_path):
    from llbench.cli.weights import weights

    runner = CliRunner()
    res = runner.invoke(weights, ["list", "lpips"])
    assert res.exit_code == 0, res.output
    assert "alexnet-owt-7be5be79.pth" in res.output and "missing" in res.output
    F.write_nrqm_mat(tmp_path / "NRQM_model.mat")
    res = runner.invoke(weights, ["import", str(tmp_path / "NRQM_model.mat")])
    assert res.exit_code == 0, res.output
    assert W.FILES["NRQM_model.mat"].present()
    res = runner.invoke(weights, ["import", str(_write(tmp_path / "x.bin"))])
    assert res.exit_code == 2 and "not a weight file" in res.output
    res = runner.invoke(weights, ["fetch", "psnr"])
    assert res.exit_code == 2 and "needs no third-party weights" in res.output


# -- calibration (official weights only) -----------------------------------------------------------
CALIBRATION = {  # shared/data/README.md: pyiqa's calibration set, distorted images
    "pi": ([11.9287, 3.073, 2.6357, 2.7979, 6.9546], 3e-2),
    "musiq": ([12.4785, 75.7772, 73.7454, 75.4609, 38.0257], 3e-2),
    "lpips": ([0.7236, 0.2572, 0.0508, 0.0521, 0.4253], 1e-2),
}


def _calibra_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("pyiqa")
    if spec is None or not spec.origin:
        return None
    d = Path(spec.origin).parent.parent / "ResultsCalibra"
    return d if d.is_dir() else None


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("pi", marks=pytest.mark.slow),  # NRQM takes ~10 s per 512x384 image on CPU
        "musiq",
        "lpips",
    ],
)
def test_calibration_with_official_weights(name):
    """Against pyiqa's reference values, within pyiqa's own tolerance (rtol = atol = tol)."""
    missing = _spec(name).available()
    if missing:
        pytest.skip(f"official weights not in the cache: {missing}")
    d = _calibra_dir()
    if d is None:
        pytest.skip("pyiqa's ResultsCalibra images are not installed")
    from llbench.io.images import read_image, to_tensor

    metric = _spec(name).build(torch.device("cpu"), {})
    expected, tol = CALIBRATION[name]
    got = []
    for stem in ["I03", "I04", "I06", "I08", "I19"]:
        x = to_tensor(read_image(d / "dist_dir" / f"{stem}.bmp"))
        ref = to_tensor(read_image(d / "ref_dir" / f"{stem}.bmp")) if name == "lpips" else None
        got.append(float(metric(x, ref)[0]))
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def test_missing_optional_package_is_named(monkeypatch):
    import importlib.util

    from llbench.io.weights import unavailable_message

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda mod, *a: None if mod == "clip" else real(mod, *a)
    )
    msg = unavailable_message("clipiqa")
    assert "openai-clip" in msg and "pip install" in msg
