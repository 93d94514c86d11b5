"""Pretrained backbones that methods use inside their losses (perceptual VGG features).

Weights are never downloaded at run time. A backbone's file is looked up in the torch hub cache
(``$TORCH_HOME/hub/checkpoints/``, where ``llbench weights import FILE`` or ``llbench weights
fetch vgg16`` put it) or taken from an explicit path. When it is absent, :func:`backbone_file`
stops with what to place where, unless the method's config chose explicitly (``if_missing``):

* ``"stop"`` (default): raise :class:`~llbench.errors.WeightsError` naming the file, the folder
  and the URL;
* ``"drop"``: return None, and the method drops the loss term (record it in ``provenance()``);
* ``"random"``: return None, and the method keeps the term with random features (record it).

:class:`VGGFeatures` builds torchvision's VGG-16/19 ``features`` stack without importing
torchvision, so the official checkpoints (keys ``features.N.weight``) load directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from llbench.errors import ConfigError, WeightsError

IF_MISSING = ("stop", "drop", "random")
VGG_LAYOUTS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ),
}  # fmt: skip
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def backbone_file(
    name: str, explicit: str | Path | None = None, if_missing: str = "stop"
) -> Path | None:
    """The weight file of backbone ``name`` (``vgg16``, ``vgg19``, or any name the weights
    registry of :mod:`llbench.io.weights` knows), or None when absent and ``if_missing`` allows.
    """
    if if_missing not in IF_MISSING:
        raise ConfigError(f"if_missing must be one of {IF_MISSING}, not {if_missing!r}")
    from llbench.io import weights as W

    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"backbone file {path} does not exist")
        return path
    files = W.files_for(name)
    if not files:
        raise ConfigError(f"no backbone called {name!r} in llbench's weights registry")
    if all(f.present() for f in files):
        return files[0].path()
    if if_missing == "stop":
        raise WeightsError(
            f"{name}: {W.unavailable_message(name)}. Or set the method's config explicitly: "
            "if_missing = 'drop' (train without this loss term) or 'random' (random features); "
            "the choice is recorded in the run's provenance."
        )
    return None


def vgg_layer_names(arch: str) -> list[str]:
    """Names of the ``features`` entries (``conv1_1``, ``relu1_1``, ..., ``pool5``)."""
    names, block, idx = [], 1, 1
    for v in VGG_LAYOUTS[arch]:
        if v == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return names


class VGGFeatures(nn.Module):
    """torchvision's VGG ``features`` up to the deepest of ``layers``, frozen.

    ``forward(x)`` takes RGB in [0, 1] (ImageNet normalisation applied inside when
    ``normalize``) and returns ``{layer: feature}`` for each requested layer (e.g. ``relu5_1``).
    ``weights``: a torchvision checkpoint path, or None for random initialisation.
    """

    def __init__(
        self,
        arch: str = "vgg16",
        layers: Sequence[str] = ("relu5_1",),
        weights: str | Path | None = None,
        normalize: bool = True,
    ):
        super().__init__()
        if arch not in VGG_LAYOUTS:
            raise ConfigError(f"unknown VGG {arch!r}; one of {sorted(VGG_LAYOUTS)}")
        names = vgg_layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise ConfigError(f"{arch} has no layer(s) {unknown}; layers: {names}")
        last = max(names.index(name) for name in layers)
        mods: list[nn.Module] = []
        channels = 3
        for v in VGG_LAYOUTS[arch]:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                mods += [nn.Conv2d(channels, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(v)
        self.features = nn.Sequential(*mods[: last + 1])
        self.layers = tuple(layers)
        self._index = {names.index(name): name for name in layers}
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.weights_file = str(weights) if weights else None
        if weights is not None:
            self.load_torchvision(weights)
        self.requires_grad_(False)
        self.eval()

    def load_torchvision(self, path: str | Path) -> None:
        """Load the ``features.*`` tensors of a torchvision VGG checkpoint (strict for them)."""
        from llbench.api.methods import load_state_dict_file

        state = load_state_dict_file(path)
        wanted = self.features.state_dict()
        sub = {
            k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
        }
        missing = [k for k in wanted if k not in sub]
        if missing:
            raise WeightsError(f"{path} is not a torchvision VGG checkpoint: missing {missing[:4]}")
        self.features.load_state_dict({k: sub[k] for k in wanted}, strict=True)

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # always frozen (no dropout or BN anyway)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalize:
            x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for i, mod in enumerate(self.features):
            x = mod(x)
            if i in self._index:
                out[self._index[i]] = x
        return out
