"""Third-party weight files: which metric or segmenter needs which file, where it must lie, and
how to place, check and fetch it.

Learned metrics run through pyiqa and torchvision, which look for their weights in fixed cache
folders and download them on first use. This machine, and many users' machines, has no network:
llbench therefore checks for the files *before* building anything (so a missing file is reported
at once, never after a download attempt or the ~23 s of Hugging Face hub retries), names the exact
file, folder and source URL, and offers ``llbench weights import FILE...`` to put user-supplied
files where the libraries look, and ``llbench weights fetch NAME`` to download them where there is
a network.

The folders (all resolved when asked, from the same environment variables the libraries read):

* ``pyiqa``: ``$TORCH_HOME/hub/pyiqa/`` (default ``~/.cache/torch/hub/pyiqa/``). pyiqa fixes this
  folder when it is imported (``pyiqa.utils.download_util.DEFAULT_CACHE_DIR``); once pyiqa is
  imported in the process, llbench uses pyiqa's value so both always agree.
* ``checkpoints``: ``$TORCH_HOME/hub/checkpoints/``, torchvision's model weights.
* ``clip``: ``$TORCH_HOME/hub/clip/``, the OpenAI CLIP models pyiqa's CLIP-IQA loads.
* ``hf``: the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, default
  ``~/.cache/huggingface/hub``), laid out as ``models--ORG--NAME/snapshots/REV/FILE`` with
  ``refs/main`` naming ``REV``; timm reads its backbones from there.

Hashes. torch hub file names carry the first hex digits of the file's sha256 after the last ``-``
(``musiq_koniq_ckpt-e95806b9.pth``); OpenAI's CLIP URLs carry the full sha256. Those are checked
on import and after download. The few files published without any hash (``NRQM_model.mat``,
``niqe_modelparameters.mat``, ``brisque_svm_weights.pth``, ``UNIQUE.pt``, timm's safetensors) are
checked for format only (they must load with ``torch.load(weights_only=True)``, ``scipy.io.loadmat``
or the safetensors header parser) and their sha256 is printed so it can be recorded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llbench.errors import WeightsError
from llbench.io.hashing import sha256_file

PYIQA_BASE_URL = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main"
TORCHVISION_BASE_URL = "https://download.pytorch.org/models"
HF_BASE_URL = "https://huggingface.co"
CLIP_RN50_SHA256 = "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"


@dataclass(frozen=True)
class WeightFile:
    """One file a metric or segmenter needs.

    ``folder`` is ``pyiqa``, ``checkpoints``, ``clip`` or ``hf:ORG/NAME`` (a Hugging Face repo).
    ``sha256`` is the full digest when published; ``sha256_prefix`` the leading hex digits that
    torch hub file names carry. ``fmt`` says how to check a file's format: ``torch``, ``mat``,
    ``safetensors`` or ``torchscript``.
    """

    filename: str
    url: str
    folder: str
    fmt: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    note: str = ""

    @property
    def hf_repo(self) -> str | None:
        return self.folder[3:] if self.folder.startswith("hf:") else None

    def path(self) -> Path:
        """Where the library looks for this file now (the HF snapshot named by ``refs/main``)."""
        repo = self.hf_repo
        if repo is None:
            return folder_path(self.folder) / self.filename
        base = hf_repo_dir(repo)
        ref = base / "refs" / "main"
        rev = ref.read_text().strip() if ref.is_file() else "<revision>"
        return base / "snapshots" / rev / self.filename

    def present(self) -> bool:
        return self.path().is_file()

    def hash_status(self) -> str:
        if self.sha256:
            return "sha256 published"
        if self.sha256_prefix:
            return f"sha256 prefix {self.sha256_prefix}"
        return "no published hash"


def _pyiqa(name: str, fmt: str, note: str = "") -> WeightFile:
    return WeightFile(
        name, f"{PYIQA_BASE_URL}/{name}", "pyiqa", fmt, None, _hash_prefix(name), note
    )


def _tv(name: str, note: str = "") -> WeightFile:
    return WeightFile(
        name,
        f"{TORCHVISION_BASE_URL}/{name}",
        "checkpoints",
        "torch",
        None,
        _hash_prefix(name),
        note,
    )


def _hash_prefix(name: str) -> str | None:
    """The sha256 prefix torch hub puts after the last ``-`` of a file name, if any."""
    stem = name.rsplit(".", 1)[0]
    if "-" not in stem:
        return None
    tail = stem.rsplit("-", 1)[1]
    if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail):
        return tail
    return None


#: Every file llbench knows, by file name (the URLs are pyiqa 0.1.16's and torchvision's).
FILES: dict[str, WeightFile] = {
    f.filename: f
    for f in [
        _pyiqa("NRQM_model.mat", "mat", "NRQM random forests (Ma et al., CVIU 2017)"),
        _pyiqa(
            "niqe_modelparameters.mat",
            "mat",
            "NIQE pristine model; optional for pi when llbench ships niqe_pris_params.npz",
        ),
        _pyiqa("musiq_koniq_ckpt-e95806b9.pth", "torch", "MUSIQ trained on KonIQ-10k"),
        _pyiqa("LPIPS_v0.1_alex-df73285e.pth", "torch", "LPIPS v0.1 linear heads (AlexNet)"),
        _pyiqa("brisque_svm_weights.pth", "torch", "BRISQUE SVR support vectors (LIVE)"),
        _pyiqa("UNIQUE.pt", "torch", "UNIQUE (ResNet-34 + bilinear pooling)"),
        _pyiqa("NIMA_InceptionV2_ava-b0c77c00.pth", "torch", "NIMA, Inception-ResNet-v2, AVA"),
        _tv("alexnet-owt-7be5be79.pth", "torchvision AlexNet, ImageNet (LPIPS backbone)"),
        _tv("resnet34-b627a593.pth", "torchvision ResNet-34, ImageNet (UNIQUE backbone)"),
        WeightFile(
            "ceiq_model-f2c2300a.mat",
            "https://github.com/mtobeiyf/CEIQ/raw/c92b6a19ccf45d783928e00ae4262cb9f289fed2/"
            "data/model.mat",
            "checkpoints",
            "mat",
            "f2c2300adbf6fbe09dfa46c5b05e47e8fb96c810f7b582344f6c3bf201e93d6d",
            "f2c2300a",
            "CEIQ SVR (LIBSVM epsilon-SVR, linear) trained on CCID2014; Yan, Li, Fu; MIT",
        ),
        WeightFile(
            "hrnet_w48_pascal_context_cls59_480x480.pth",
            "https://github.com/HRNet/HRNet-Semantic-Segmentation#pascal-context "
            "(the authors' OneDrive/Baidu links; no stable URL or hash published)",
            "checkpoints",
            "torch",
            None,
            None,
            "HRNetV2-W48 trained on PASCAL-Context (59 classes), SKF's semantic knowledge bank",
        ),
        _tv("vgg16-397923af.pth", "torchvision VGG-16, ImageNet (perceptual losses)"),
        _tv("vgg19-dcbb9e9d.pth", "torchvision VGG-19, ImageNet (perceptual losses)"),
        _tv(
            "deeplabv3_resnet50_coco-cd0a2569.pth",
            "torchvision DeepLabV3-ResNet50, COCO subset with the 20 VOC classes",
        ),
        _tv(
            "fcn_resnet50_coco-1167a1af.pth",
            "torchvision FCN-ResNet50, COCO subset with the 20 VOC classes",
        ),
        WeightFile(
            "RN50.pt",
            f"https://openaipublic.azureedge.net/clip/models/{CLIP_RN50_SHA256}/RN50.pt",
            "clip",
            "torchscript",
            CLIP_RN50_SHA256,
            None,
            "OpenAI CLIP RN50 (CLIP-IQA)",
        ),
        WeightFile(
            "model.safetensors",
            f"{HF_BASE_URL}/timm/inception_resnet_v2.tf_in1k/resolve/main/model.safetensors",
            "hf:timm/inception_resnet_v2.tf_in1k",
            "safetensors",
            None,
            None,
            "timm Inception-ResNet-v2 (NIMA's backbone, built by pyiqa before NIMA's "
            "checkpoint overwrites it)",
        ),
    ]
}

#: Which files each metric or segmenter needs, in the order they are loaded.
NEEDS: dict[str, tuple[str, ...]] = {
    "nrqm": ("NRQM_model.mat",),
    "pi": ("NRQM_model.mat",),
    "musiq": ("musiq_koniq_ckpt-e95806b9.pth",),
    "lpips": ("alexnet-owt-7be5be79.pth", "LPIPS_v0.1_alex-df73285e.pth"),
    "brisque": ("brisque_svm_weights.pth",),
    "unique": ("resnet34-b627a593.pth", "UNIQUE.pt"),
    "nima": ("model.safetensors", "NIMA_InceptionV2_ava-b0c77c00.pth"),
    "clipiqa": ("RN50.pt",),
    "deeplabv3-resnet50": ("deeplabv3_resnet50_coco-cd0a2569.pth",),
    "fcn-resnet50": ("fcn_resnet50_coco-1167a1af.pth",),
    "ceiq": ("ceiq_model-f2c2300a.mat",),
    "hrnet-w48-pascal-context": ("hrnet_w48_pascal_context_cls59_480x480.pth",),
    "vgg16": ("vgg16-397923af.pth",),
    "vgg19": ("vgg19-dcbb9e9d.pth",),
}

#: Python packages each metric needs beyond pyiqa's core (import name, pip name).
PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "nima": (("timm", "timm"),),
    # openai-clip imports pkg_resources, which setuptools removed in version 81
    "clipiqa": (("clip", "openai-clip"), ("pkg_resources", "setuptools<81")),
}


# -- folders ------------------------------------------------------------------------------------
def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch when it is not imported yet."""
    if "torch" in sys.modules:
        import torch

        return Path(torch.hub.get_dir())
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "torch",
    )
    return Path(os.path.expanduser(torch_home)) / "hub"


def pyiqa_cache_dir() -> Path:
    """pyiqa's weight folder: its import-time ``DEFAULT_CACHE_DIR`` once pyiqa is imported."""
    mod = sys.modules.get("pyiqa.utils.download_util")
    if mod is not None and getattr(mod, "DEFAULT_CACHE_DIR", None):
        return Path(mod.DEFAULT_CACHE_DIR)
    return torch_hub_dir() / "pyiqa"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache (huggingface_hub's import-time value once it is imported)."""
    mod = sys.modules.get("huggingface_hub.constants")
    if mod is not None and getattr(mod, "HF_HUB_CACHE", None):
        return Path(mod.HF_HUB_CACHE)
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expanduser(os.environ["HF_HUB_CACHE"]))
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    return Path(os.path.expanduser(hf_home)) / "hub"


def hf_repo_dir(repo: str) -> Path:
    return hf_hub_cache() / ("models--" + repo.replace("/", "--"))


def folder_path(folder: str) -> Path:
    if folder == "pyiqa":
        return pyiqa_cache_dir()
    if folder == "checkpoints":
        return torch_hub_dir() / "checkpoints"
    if folder == "clip":
        return torch_hub_dir() / "clip"
    if folder.startswith("hf:"):
        return hf_repo_dir(folder[3:])
    raise ValueError(f"unknown weights folder {folder!r}")


# -- queries ------------------------------------------------------------------------------------
def files_for(name: str) -> list[WeightFile]:
    """The files metric or segmenter ``name`` needs (empty when it needs none)."""
    return [FILES[f] for f in NEEDS.get(name, ())]


def missing_files(name: str) -> list[WeightFile]:
    return [f for f in files_for(name) if not f.present()]


def missing_packages(name: str) -> list[tuple[str, str]]:
    import importlib.util

    return [
        (mod, pip) for mod, pip in PACKAGES.get(name, ()) if importlib.util.find_spec(mod) is None
    ]


def unavailable_message(name: str) -> str | None:
    """None when everything ``name`` needs is here, else what is missing and where it goes."""
    parts = []
    pkgs = missing_packages(name)
    if pkgs:
        parts.append(
            "needs the Python package(s) "
            + ", ".join(p for _, p in pkgs)
            + " (pip install "
            + " ".join(repr(p) if "<" in p else p for _, p in pkgs)
            + ")"
        )
    files = missing_files(name)
    if files:
        listed = "; ".join(f"{f.filename} -> {f.path()} (from {f.url})" for f in files)
        parts.append(
            f"missing weight file(s): {listed}. Place them with `llbench weights import "
            f"{' '.join(f.filename for f in files)}`, or run `llbench weights fetch "
            f"{name}` where there is a network"
        )
    return "; ".join(parts) if parts else None


def require(name: str) -> dict[str, Path]:
    """Paths of the files ``name`` needs; :class:`WeightsError` naming what is missing."""
    msg = unavailable_message(name)
    if msg:
        raise WeightsError(f"{name}: {msg}")
    return {f.filename: f.path() for f in files_for(name)}


# -- checking -----------------------------------------------------------------------------------
def check_hash(wf: WeightFile, path: Path, digest: str | None = None) -> str:
    """Compare ``path`` with ``wf``'s published hash; return the sha256, raise on a mismatch."""
    digest = digest or sha256_file(path)
    if wf.sha256 and digest != wf.sha256:
        raise WeightsError(
            f"{path}: sha256 {digest} does not match the published {wf.sha256} "
            f"of {wf.filename} ({wf.url})"
        )
    if wf.sha256_prefix and not digest.startswith(wf.sha256_prefix):
        raise WeightsError(
            f"{path}: sha256 {digest} does not start with {wf.sha256_prefix}, the "
            f"hash prefix in the name {wf.filename}: not the official file"
        )
    return digest


def check_format(wf: WeightFile, path: Path) -> None:
    """Load ``path`` the safe way for its format; :class:`WeightsError` if it does not load."""
    try:
        if wf.fmt == "torch":
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        elif wf.fmt == "mat":
            import scipy.io

            scipy.io.loadmat(path)
        elif wf.fmt == "safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                list(fh.keys())
        elif wf.fmt == "torchscript":
            import zipfile

            if not zipfile.is_zipfile(path):
                raise ValueError("not a TorchScript (zip) archive")
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - every loader raises its own types
        raise WeightsError(
            f"{path} is not a valid {wf.filename} ({wf.fmt}): {type(exc).__name__}: {exc}"
        ) from exc


# -- placing ------------------------------------------------------------------------------------
@dataclass
class Placed:
    """One file :func:`import_files` or :func:`fetch` put in place."""

    file: WeightFile
    dest: Path
    sha256: str
    verified: bool


def identify(path: Path, digest: str | None = None) -> WeightFile:
    """The known file ``path`` is, by name, else by full sha256."""
    wf = FILES.get(path.name)
    if wf is not None:
        return wf
    digest = digest or sha256_file(path)
    for cand in FILES.values():
        if cand.sha256 == digest:
            return cand
    raise WeightsError(
        f"{path.name} is not a weight file llbench knows; known files: {', '.join(sorted(FILES))}"
    )


def _dest_for(wf: WeightFile, digest: str) -> Path:
    repo = wf.hf_repo
    if repo is None:
        return folder_path(wf.folder) / wf.filename
    base = hf_repo_dir(repo)
    ref = base / "refs" / "main"
    if ref.is_file():
        rev = ref.read_text().strip()
    else:
        # No commit is known offline: name the snapshot after the file's content, as a commit
        # id would be (40 hex digits), and point refs/main at it like the hub client does.
        rev = hashlib.sha1(f"llbench-import:{digest}".encode()).hexdigest()
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(rev)
    return base / "snapshots" / rev / wf.filename


def _copy_atomic(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def import_files(paths: Iterable[str | os.PathLike]) -> list[Placed]:
    """Check each file (hash, format) and copy it where its library looks.

    Every file is checked before any is copied, so a bad file leaves nothing half-imported.
    """
    plan = []
    for p in paths:
        src = Path(p).expanduser()
        if not src.is_file():
            raise WeightsError(f"no such file: {src}")
        digest = sha256_file(src)
        wf = identify(src, digest)
        check_hash(wf, src, digest)
        check_format(wf, src)
        plan.append((wf, src, digest))
    placed = []
    for wf, src, digest in plan:
        dest = _dest_for(wf, digest)
        if dest.resolve() != src.resolve():
            _copy_atomic(src, dest)
        placed.append(Placed(wf, dest, digest, bool(wf.sha256 or wf.sha256_prefix)))
    return placed


def fetch(name: str, force: bool = False) -> list[Placed]:
    """Download the files metric or segmenter ``name`` needs (those not present yet)."""
    if name not in NEEDS:
        known = ", ".join(sorted(NEEDS))
        raise WeightsError(f"{name!r} needs no third-party weights llbench knows; names: {known}")
    from llbench.io.download import download  # written alongside; imported only when fetching

    placed = []
    for wf in files_for(name):
        if wf.present() and not force:
            continue
        if " " in wf.url:  # no direct link published: say where to get it and where it goes
            raise WeightsError(
                f"{wf.filename} has no direct download: get it from {wf.url}, then "
                f"`llbench weights import FILE` (it goes to {wf.path()})"
            )
        tmp_dir = folder_path(wf.folder if wf.hf_repo is None else f"hf:{wf.hf_repo}")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f".{wf.filename}.download"
        download(wf.url, tmp, sha256=wf.sha256)
        try:
            digest = check_hash(wf, tmp)
            check_format(wf, tmp)
            dest = _dest_for(wf, digest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        placed.append(Placed(wf, dest, digest, bool(wf.sha256 or wf.sha256_prefix)))
    return placed


def status(names: Sequence[str] | None = None) -> list[tuple[WeightFile, list[str], bool]]:
    """``(file, users, present)`` for every known file (or those ``names`` need)."""
    users: dict[str, list[str]] = {}
    for user, files in NEEDS.items():
        if names and user not in names:
            continue
        for f in files:
            users.setdefault(f, []).append(user)
    return [(FILES[f], u, FILES[f].present()) for f, u in users.items()]
