"""Weight files of the right format for the learned metrics, generated locally.

Each writer produces a file with exactly the name, folder and layout pyiqa 0.1.16 and torchvision
read (a randomly initialised state dict with the real key layout, or a MATLAB struct with the
real field layout), so the tests exercise llbench's real loading path without the official
weights. Scores from such files are meaningless; the tests compare them with pyiqa run on the same
files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from llbench.io import weights as W


def _save(obj, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def _random_state(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in module.state_dict().items():
        if "running_var" in k:
            out[k] = torch.rand(v.shape, generator=g).to(v.dtype) * 0.5 + 0.5
        elif v.is_floating_point():
            out[k] = torch.randn(v.shape, generator=g).to(v.dtype) * 0.05
        else:
            out[k] = v.clone()
    return out


def write_nrqm_mat(path: Path | None = None, seed: int = 0) -> Path:
    """``NRQM_model.mat``: ``model.linear`` (4 x 1) and ``model.rf``, a 1 x 3 cell of structs
    whose fields 0, 1, 4, 5, 6 are the left/right child (1-based, 0 at a leaf), threshold,
    prediction and attribute index arrays (nodes x trees; indices are integers) pyiqa's ``NRQM``
    reads."""
    import scipy.io

    path = path or W.FILES["NRQM_model.mat"].path()
    rng = np.random.default_rng(seed)
    trees, nodes = 4, 7
    ldau = np.zeros((nodes, trees), dtype=np.int32)
    rdau = np.zeros((nodes, trees), dtype=np.int32)
    ldau[0], rdau[0] = 2, 3  # 1-based children; 0 marks a leaf
    ldau[1], rdau[1] = 4, 5
    ldau[2], rdau[2] = 6, 7
    cell = np.empty((1, 3), dtype=object)
    for i, (dim, lo, hi) in enumerate([(18, 0.1, 2.0), (45, 0.0, 1.0), (75, 0.0, 50.0)]):
        cell[0, i] = {
            "ldau": ldau,
            "rdau": rdau,
            "nodeprob": np.full((nodes, trees), 1.0),
            "nodesize": np.ones((nodes, trees)),
            "cutvalue": rng.uniform(lo, hi, (nodes, trees)),
            "nodevalue": rng.uniform(2.0, 8.0, (nodes, trees)),
            "cutvar": rng.integers(1, dim + 1, (nodes, trees)).astype(np.int32),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        path, {"model": {"linear": np.array([[0.5], [0.3], [0.4], [0.3]]), "rf": cell}}
    )
    return path


def write_niqe_mat(path: Path | None = None, seed: int = 0) -> Path:
    """``niqe_modelparameters.mat``: ``mu_prisparam`` (1 x 36), ``cov_prisparam`` (36 x 36)."""
    import scipy.io

    path = path or W.FILES["niqe_modelparameters.mat"].path()
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(36, 36)) * 0.1
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        path,
        {
            "mu_prisparam": rng.uniform(0.2, 2.0, (1, 36)),
            "cov_prisparam": a @ a.T + np.eye(36) * 0.05,
        },
    )
    return path


def write_musiq(seed: int = 0) -> Path:
    from llbench.metrics.learned import import_pyiqa

    import_pyiqa()
    from pyiqa.archs.musiq_arch import MUSIQ

    net = MUSIQ(pretrained=False, num_class=1)
    return _save(_random_state(net, seed), W.FILES["musiq_koniq_ckpt-e95806b9.pth"].path())


def write_alexnet(seed: int = 0) -> Path:
    from llbench._torchvision import import_torchvision

    tv = import_torchvision()
    net = tv.models.alexnet(weights=None)
    return _save(_random_state(net, seed), W.FILES["alexnet-owt-7be5be79.pth"].path())


def write_lpips_heads(seed: int = 0) -> Path:
    g = torch.Generator().manual_seed(seed)
    heads = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) * 0.1
        for i, c in enumerate([64, 192, 384, 256, 256])
    }
    return _save(heads, W.FILES["LPIPS_v0.1_alex-df73285e.pth"].path())


def write_brisque(seed: int = 0, n_sv: int = 50) -> Path:
    g = torch.Generator().manual_seed(seed)
    sv_coef = torch.randn(n_sv, generator=g, dtype=torch.float64)
    sv = torch.rand(n_sv, 36, generator=g, dtype=torch.float64)
    return _save((sv_coef, sv), W.FILES["brisque_svm_weights.pth"].path())


def write_unique(seed: int = 0) -> list[Path]:
    from llbench._torchvision import import_torchvision

    tv = import_torchvision()
    backbone = _random_state(tv.models.resnet34(weights=None), seed)
    p1 = _save(backbone, W.FILES["resnet34-b627a593.pth"].path())
    g = torch.Generator().manual_seed(seed + 1)
    state = {f"backbone.{k}": v for k, v in backbone.items()}
    state["fc.weight"] = torch.randn(2, 512 * 512, generator=g) * 0.01
    state["fc.bias"] = torch.zeros(2)
    return [p1, _save(state, W.FILES["UNIQUE.pt"].path())]


def write_nima(seed: int = 0) -> list[Path]:
    """timm's backbone in the hub cache layout, then NIMA's checkpoint (``{"params": ...}``)."""
    from llbench._torchvision import import_torchvision

    import_torchvision()
    import timm
    from safetensors.torch import save_file

    wf = W.FILES["model.safetensors"]
    backbone = timm.create_model("inception_resnet_v2", pretrained=False)
    base = W.hf_repo_dir(wf.hf_repo)
    rev = "0" * 40
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(rev)
    p1 = base / "snapshots" / rev / wf.filename
    p1.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in _random_state(backbone, seed).items()}, str(p1))
    from llbench.metrics.learned import hub_offline_default, import_pyiqa

    import_pyiqa()
    from pyiqa.archs.nima_arch import NIMA

    with hub_offline_default():
        net = NIMA(base_model_name="inception_resnet_v2", num_classes=10, pretrained=False)
    p2 = _save(
        {"params": _random_state(net, seed + 1)},
        W.FILES["NIMA_InceptionV2_ava-b0c77c00.pth"].path(),
    )
    return [p1, p2]


def write_clip_rn50(seed: int = 0) -> Path:
    """A small CLIP with the ModifiedResNet layout saved as a TorchScript archive named
    ``RN50.pt``, the format OpenAI publishes (pyiqa's ``clip_model.load`` rebuilds the model
    from the archive's state dict, inferring the sizes). The caller patches the expected sha256.
    """
    from llbench.metrics.learned import import_pyiqa

    import_pyiqa()
    import clip
    from pyiqa.archs.clip_model import CLIP

    torch.manual_seed(seed)
    net = CLIP(
        embed_dim=64,
        image_resolution=224,
        vision_layers=(1, 1, 1, 1),
        vision_width=8,
        vision_patch_size=None,
        context_length=77,
        vocab_size=49408,
        transformer_width=64,
        transformer_heads=1,
        transformer_layers=1,
    ).eval()
    example = (torch.rand(1, 3, 224, 224), clip.tokenize(["good image", "bad image"]))
    traced = torch.jit.trace(net, example, check_trace=False)
    path = W.FILES["RN50.pt"].path()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(path))
    return path


def trust(monkeypatch, filename: str, path: Path) -> None:
    """Make ``filename``'s published hash the generated file's (for hash-checked files)."""
    wf = W.FILES[filename]
    monkeypatch.setitem(
        W.FILES, filename, dataclasses.replace(wf, sha256=W.sha256_file(path), sha256_prefix=None)
    )


WRITERS = {
    "nrqm": lambda: [write_nrqm_mat()],
    "pi": lambda: [write_nrqm_mat(), write_niqe_mat()],
    "musiq": lambda: [write_musiq()],
    "lpips": lambda: [write_alexnet(), write_lpips_heads()],
    "brisque": lambda: [write_brisque()],
    "unique": write_unique,
    "nima": write_nima,
    "clipiqa": lambda: [write_clip_rn50()],
}
