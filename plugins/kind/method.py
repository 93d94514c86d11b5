"""KinD as a trainable llbench method: the test-time pipeline, three training phases, decoder sites.

Phases, in the order of the authors' README: ``decomposition`` (``decomposition_net_train.py``),
``adjustment`` (``adjustment_net_train.py``, Decom-Net frozen) and ``restoration``
(``reflectance_restoration_net_train.py``, Decom-Net frozen). Each minimises its own loss
(:mod:`.losses`) with its own Adam optimizer, batch and crop size, through
:func:`llbench.api.run_phases`. The restoration phase is the last: SKF adds its terms there
(Wu et al., CVPR 2023, Sec. 4.1: "only the last subnets ... are trained with SCH loss and SA
loss"), and its output is the enhanced image ``R_restored * I_adjusted``, the adjustment net
(frozen, already trained) fed the pair's own light ratio, as in adjustment training.

Differences from the code, all forced by llbench's patch loader or harmless: the code decomposes
whole training images once and crops the maps; here each crop is decomposed (the same network,
different only within a few pixels of the crop border). The code holds out 30 (adjustment) and
19 (restoration) of LOL's 485 training pairs to look at; here every training pair trains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from llbench.api import TrainableMethod, TrainContext
from llbench.api.features import DecoderSite
from llbench.api.training import Patches, Phase, epochs_to_steps, paired_items
from llbench.config import merge
from llbench.errors import ConfigError
from llbench.plugins.retinexnet import tf_weights

from . import losses
from .model import KinDModel, ratio_map

NAME = "kind"
SKIMAGE_GRAY = (0.2125, 0.7154, 0.0721)  # skimage.color.rgb2gray


def minmax_normalize(image: torch.Tensor) -> torch.Tensor:
    """``utils.load_images``: each image stretched to its own min..max,
    ``(x - min) / max(max - min, 0.001)`` over all pixels and channels."""
    lo = image.amin(dim=(1, 2, 3), keepdim=True)
    hi = image.amax(dim=(1, 2, 3), keepdim=True)
    return (image - lo) / (hi - lo).clamp_min(0.001)


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """``skimage.filters.gaussian(x, sigma)`` (``scipy.ndimage.gaussian_filter``, mode
    ``'nearest'``, radius ``int(truncate * sigma + 0.5)``) of (N, 1, H, W) maps."""
    radius = int(truncate * sigma + 0.5)
    r = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (r / sigma) ** 2)
    k = (k / k.sum()).to(x)
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    return F.conv2d(x, k.view(1, 1, -1, 1))


def dark_region_weight(reflectance: torch.Tensor) -> torch.Tensor:
    """``evaluate.py``'s fix for very dark regions restored as grey:
    ``min(sqrt(2 * gaussian(rgb2gray(R_low), 3)), 1)``."""
    gray = (reflectance * reflectance.new_tensor(SKIMAGE_GRAY).view(1, 3, 1, 1)).sum(1, True)
    return (2.0 * gaussian_blur(gray, 3.0)).clamp_min(0.0).sqrt().clamp_max(1.0)


class NormalizedPairs:
    """Patch batches of ``(low, high)`` with each crop normalised by its *whole image's* min and
    max, as ``utils.load_images`` normalises files before cropping."""

    def __init__(self, patches: Patches, normalize: bool):
        self.patches = patches
        self.normalize = normalize
        self._stats: dict[int, tuple[tuple[float, float], ...]] = {}

    def _item_stats(self, i: int) -> tuple[tuple[float, float], ...]:
        if i not in self._stats:
            from llbench.io.images import read_image

            out = []
            for p in self.patches.items[i]:
                arr = read_image(Path(p))
                out.append((float(arr.min()) / 255.0, float(arr.max()) / 255.0))
            self._stats[i] = tuple(out)
        return self._stats[i]

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        tensors = self.patches.batch(step)
        if not self.normalize:
            return tensors
        stats = [self._item_stats(i) for i in self.patches.indices(step)]
        out = []
        for pos, t in enumerate(tensors):
            lo = torch.tensor([s[pos][0] for s in stats]).view(-1, 1, 1, 1)
            hi = torch.tensor([s[pos][1] for s in stats]).view(-1, 1, 1, 1)
            out.append((t - lo) / (hi - lo).clamp_min(0.001))
        return tuple(out)


def tf_table() -> dict[str, str]:
    """PyTorch key -> TF variable of the official checkpoints (TF-slim names ``weights`` and
    ``biases``; the transposed convolutions' ``weights`` only)."""
    convs = {
        f"decom.{n}": f"DecomNet/{n}"
        for n in (
            "g_conv1_1",
            "g_conv2_1",
            "g_conv3_1",
            "g_conv8_1",
            "g_conv9_1",
            "g_conv10",
            "l_conv1_2",
            "l_conv1_4",
        )
    }
    ups = {"decom.g_up_1": "DecomNet/g_up_1", "decom.g_up_2": "DecomNet/g_up_2"}
    for level in range(1, 6):
        for j in (1, 2):
            convs[f"restoration.enc{level}.conv{j}"] = f"Restoration_net/de_conv{level}_{j}"
    for k in range(6, 10):
        ups[f"restoration.dec{k}.up"] = f"Restoration_net/up_{k}"
        for j in (1, 2):
            convs[f"restoration.dec{k}.conv{j}"] = f"Restoration_net/de_conv{k}_{j}"
    convs["restoration.out"] = "Restoration_net/de_conv10"
    for i in range(1, 5):
        convs[f"adjust.en_conv_{i}"] = f"Illumination_adjust_net/en_conv_{i}"
    table = {f"{k}.weight": f"{v}/weights" for k, v in {**convs, **ups}.items()}
    table.update({f"{k}.bias": f"{v}/biases" for k, v in convs.items()})
    return table


def lr_lambda(
    steps_per_epoch: int, epochs: Sequence[float], factors: Sequence[float]
) -> Callable[[int], float]:
    """The restoration script's ``lr_schedule``: ``factors[k]`` once the epoch exceeds
    ``epochs[k]`` (1 before)."""
    if len(epochs) != len(factors):
        raise ConfigError("kind: lr_epochs and lr_factors must have the same length")

    def f(step: int) -> float:
        epoch = step // max(1, steps_per_epoch)
        factor = 1.0
        for e, fac in zip(epochs, factors, strict=True):
            if epoch > e:
                factor = float(fac)
        return factor

    return f


class KinD(TrainableMethod):
    """KinD (Zhang, Zhang, Guo; ACM MM 2019). ``self.net`` holds ``decom``, ``restoration`` and
    ``adjust``."""

    net: KinDModel

    def __init__(self, config: Mapping[str, Any], device: torch.device | str):
        from . import DEFAULT_CONFIG

        super().__init__(merge(DEFAULT_CONFIG, config), device)
        if float(self.config["test_ratio"]) <= 0:
            raise ConfigError(f"kind: test_ratio must be > 0, got {self.config['test_ratio']}")
        self.net = KinDModel().to(self.device).eval()
        self.training_info: dict[str, Any] = {}

    # -- inference ---------------------------------------------------------------------------
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        """``evaluate.py``: normalise, decompose, restore R, adjust I with the user's light ratio
        (``test_ratio``, 5.0 in the code), then (``test_postprocess``) damp the restored R in very
        dark regions and fuse with the input, ``I x + (1 - I) (R_hat I_hat)``."""
        self.net.eval()
        cfg = self.config
        x = low.to(self.device, torch.float32)
        if cfg["normalize_input"]:
            x = minmax_normalize(x)
        r, i = self.net.decom(x)
        restored = self.net.restoration(r, i)
        adjusted = self.net.adjust(i, ratio_map(i, float(cfg["test_ratio"])))
        if cfg["test_postprocess"]:
            out = restored * dark_region_weight(r) * adjusted
            out = i * x + (1.0 - i) * out
        else:
            out = restored * adjusted
        return out.clamp(0.0, 1.0)

    def load_weights(self, path: str | Path) -> None:
        """A state dict of this layout (``.pt``), or the authors' TensorFlow variables exported to
        ``.npz`` (the three checkpoint folders merged; see
        :mod:`llbench.plugins.retinexnet.tf_weights`)."""
        if Path(path).suffix.lower() == ".npz":
            arrays = tf_weights.read_npz(path)
            self.load_state_dict(tf_weights.convert(arrays, tf_table(), str(path)))
        else:
            super().load_weights(path)

    def decoder_sites(self) -> tuple[DecoderSite, ...]:
        """The restoration net's four decoder stages, coarse to fine (strides 8, 4, 2, 1; 256,
        128, 64 and 32 channels): the decoder of the last-trained sub-network, where SKF puts
        its SE modules (Wu et al., CVPR 2023, Sec. 4.1)."""
        return (
            DecoderSite("dec6", "restoration.dec6", channels=256, stride=8),
            DecoderSite("dec7", "restoration.dec7", channels=128, stride=4),
            DecoderSite("dec8", "restoration.dec8", channels=64, stride=2),
            DecoderSite("dec9", "restoration.dec9", channels=32, stride=1),
        )

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "test_ratio": float(self.config["test_ratio"]),
            "test_postprocess": bool(self.config["test_postprocess"]),
        }
        if self.training_info:
            info["training"] = dict(self.training_info)
        return info

    # -- training ----------------------------------------------------------------------------
    def _phase_data(self, ctx: TrainContext, name: str, offset: int):
        cfg = self.config
        pc = cfg["phases"][name]
        patches = Patches(
            paired_items(ctx.samples),
            patch=int(pc["patch_size"]),
            batch_size=int(pc["batch_size"]),
            seed=ctx.seed + offset,
            cache_mb=float(cfg["cache_mb"]),
        )
        steps = epochs_to_steps(float(pc["epochs"]), patches.steps_per_epoch, int(cfg["max_steps"]))
        data = NormalizedPairs(patches, bool(cfg["normalize_input"]))
        schedule = lr_lambda(patches.steps_per_epoch, pc["lr_epochs"], pc["lr_factors"])

        def optimizer(params):
            return torch.optim.Adam(params, lr=float(pc["lr"]))

        def scheduler(opt):
            return torch.optim.lr_scheduler.LambdaLR(opt, schedule)

        return data, steps, optimizer, scheduler

    def training_phases(self, ctx: TrainContext) -> list[Phase]:
        """``decomposition``, ``adjustment``, ``restoration`` (the last; its output is the
        enhanced image ``R_restored * I_adjusted`` in [0, 1])."""
        cfg = self.config
        net = self.net
        w = cfg["loss_weights"]
        gamma = float(cfg["restoration_target_gamma"])
        seed = int(ctx.seed)

        def decomposition_loss(step, batch):
            low, high = batch
            r_low, i_low = net.decom(low)
            r_high, i_high = net.decom(high)
            terms = losses.decomposition_terms(
                low, high, r_low, i_low, r_high, i_high, w["decomposition"]
            )
            return r_low * i_low, terms

        def adjustment_loss(step, batch):
            low, high = batch
            with torch.no_grad():
                _, i_low = net.decom(low)
                _, i_high = net.decom(high)
            r = (i_low / (i_high + 1e-4)).mean(dim=(1, 2, 3))
            # the code trains both directions: brighten with 1/r, or darken the normal-light
            # illumination with r, each with probability 1/2
            g = torch.Generator().manual_seed(seed * 7_919 + 104_729 + step)
            swap = (torch.randint(0, 2, (low.shape[0],), generator=g) == 0).to(low.device)
            s4 = swap.view(-1, 1, 1, 1)
            source = torch.where(s4, i_high, i_low)
            target = torch.where(s4, i_low, i_high)
            ratio = torch.where(swap, r, 1.0 / r + 1e-4)
            adjusted = net.adjust(source, ratio_map(source, ratio))
            return adjusted, losses.adjustment_terms(adjusted, target, w["adjustment"])

        def restoration_loss(step, batch):
            low, high = batch
            with torch.no_grad():
                r_low, i_low = net.decom(low)
                r_high, i_high = net.decom(high)
                target = r_high.pow(gamma)
            restored = net.restoration(r_low, i_low)
            terms = losses.restoration_terms(restored, target, w["restoration"])
            with torch.no_grad():
                ratio = 1.0 / (i_low / (i_high + 1e-4)).mean(dim=(1, 2, 3)) + 1e-4
                adjusted = net.adjust(i_low, ratio_map(i_low, ratio))
            return restored * adjusted, terms

        phases = []
        specs = [
            ("decomposition", decomposition_loss, net.decom),
            ("adjustment", adjustment_loss, net.adjust),
            ("restoration", restoration_loss, net.restoration),
        ]
        for k, (name, fn, module) in enumerate(specs):
            data, steps, optimizer, scheduler = self._phase_data(ctx, name, k)
            phases.append(Phase(name, steps, data.batch, fn, [module], optimizer, scheduler))
        return phases

    def fit(self, ctx: TrainContext) -> None:
        self.training_info = self.fit_phases(ctx, NAME)
