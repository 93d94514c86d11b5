"""Fine-tuning the enhancer with the ranker (Sec. 3.3, Eq. 3-5): f^(n) -> f^(n+1).

``l_total = l_con + lambda_R * l_R`` with ``lambda_R = 0.1``:

* ``l_R = mean_i Sigmoid(g^(n)(y_i^(n+1)))`` (Eq. 3), the ranker frozen in eval mode (RankSRGAN's
  rank-content loss; lower ranker scores are better, so minimising pushes outputs towards what
  the ranker prefers);
* ``l_con`` (Eq. 4) is EnlightenGAN's self-feature-preserving loss between the outputs of the
  enhancer being trained and of the frozen enhancer of the previous stage on the same input:
  VGG-16 (ImageNet) ``relu5_1`` features, each instance-normalised (``InstanceNorm2d``, no
  affine), mean squared difference. EnlightenGAN's VGG skips the 4th max-pool before
  ``conv5_1`` (its default ``vgg_maxpooling = False``), kept here (``vgg_pool4 = false``). Eq. 4
  prints a sum of squared norms; EnlightenGAN's code, which the paper cites for the loss, takes
  the mean, without which ``l_con`` would swamp ``0.1 l_R``.

Adam, lr 1e-5, batch 2, 10k iterations per stage (Sec. 4.1), whole images with random flips.
For stochastic enhancers (diffusion samplers) the frozen target and the trained output draw the
same noise: both calls run under the same seed (notes, choice 4). The enhancer is any llbench
:class:`~llbench.api.TrainableMethod` whose ``enhance`` is differentiable; its trainable
parameters are those of ``modules()`` that require gradients (a base that freezes a part, e.g.
LightenDiffusion's decomposition network, keeps it frozen).

The VGG-16 file comes from the torch hub cache (``llbench weights fetch vgg16`` or
``llbench weights import vgg16-397923af.pth``); without it the run stops, unless the config
chose ``vgg_if_missing = "drop"`` (fine-tune with ``l_R`` alone) or ``"random"`` (random VGG
features), recorded in the provenance.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llbench.errors import ConfigError, MethodOutputError

POOL4_INDEX = 23  # position of pool4 in torchvision's VGG-16 ``features``


class ContentLoss(nn.Module):
    """EnlightenGAN's self-feature-preserving loss on VGG-16 ``relu5_1`` (see the module doc)."""

    def __init__(self, weights: str | Path | None, pool4: bool = False):
        super().__init__()
        from llbench.api.backbones import VGGFeatures

        self.vgg = VGGFeatures("vgg16", ("relu5_1",), weights=weights)
        self.pool4 = bool(pool4)
        self.norm = nn.InstanceNorm2d(512, affine=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        v = self.vgg
        h = (x - v.mean) / v.std if v.normalize else x
        for i, mod in enumerate(v.features):
            if i == POOL4_INDEX and not self.pool4:
                continue
            h = mod(h)
        return h

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ft = self.norm(self.features(target))
        return torch.mean((self.norm(self.features(out)) - ft) ** 2)


def trainable_parameters(method: Any, names: Sequence[str] = ()) -> list[nn.Parameter]:
    """The parameters fine-tuning updates: those of ``method.modules()`` that require
    gradients, or, when ``names`` are given, only those of these submodules of ``method.net``
    (LightenDiffusion: ``["Unet"]``, its decomposition network stays frozen); the others are
    frozen."""
    if names:
        net = method.net
        for p in net.parameters():
            p.requires_grad_(False)
        chosen = []
        for name in names:
            try:
                sub = net.get_submodule(str(name))
            except AttributeError as exc:
                raise ConfigError(
                    f"hillie: finetune_modules names {name!r}, which {type(net).__name__} lacks"
                ) from exc
            sub.requires_grad_(True)
            chosen.append(sub)
        modules = chosen
    else:
        modules = method.modules()
    seen: set[int] = set()
    out = []
    for m in modules:
        for p in m.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    if not out:
        raise ConfigError(
            f"hillie: the base method {type(method).__name__} has no trainable weights"
        )
    return out


def frozen_copy(method: Any) -> Any:
    """A frozen deep copy of ``method`` (the previous stage's enhancer f^(n))."""
    twin = copy.deepcopy(method)
    for m in twin.modules():
        m.requires_grad_(False)
        m.eval()
    return twin


@contextlib.contextmanager
def same_noise(seed: int, device: torch.device) -> Iterator[None]:
    """Run the body with torch's RNG seeded to ``seed`` and restore the RNG afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def loss_terms(
    out: torch.Tensor,
    target: torch.Tensor,
    ranker: nn.Module,
    content: ContentLoss | None,
    lambda_r: float,
) -> dict[str, torch.Tensor]:
    """``{"con": l_con, "rank": lambda_R * l_R}`` (Eq. 3-5); ``con`` absent when dropped."""
    terms: dict[str, torch.Tensor] = {}
    if content is not None:
        terms["con"] = content(out, target)
    terms["rank"] = lambda_r * torch.sigmoid(ranker(out)).mean()
    return terms


def enhance_with_noise(method: Any, low: torch.Tensor, noise_seed: int) -> torch.Tensor:
    """The base's output with autograd, its sampling noise drawn from ``noise_seed``: through
    ``enhance_differentiable(low, noise_seed=...)`` when the base has one (LightenDiffusion,
    whose ``enhance`` runs without gradients), else ``enhance`` under a seeded RNG."""
    fn = getattr(method, "enhance_differentiable", None)
    if fn is not None:
        return fn(low, noise_seed=noise_seed)
    with same_noise(noise_seed, low.device):
        return method.enhance(low)


def finetune_step(
    method: Any,
    previous: Any,
    ranker: nn.Module,
    content: ContentLoss | None,
    low: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    lambda_r: float,
    noise_seed: int,
) -> dict[str, float]:
    """One optimizer step of Eq. 5 on the batch ``low``; returns the logged values."""
    with torch.no_grad():
        target = enhance_with_noise(previous, low, noise_seed)
    out = enhance_with_noise(method, low, noise_seed)
    if not out.requires_grad:
        raise ConfigError(
            f"hillie: {type(method).__name__}.enhance is not differentiable (its output has no "
            "gradient); HiLLIE fine-tunes only bases whose enhance runs with autograd"
        )
    terms = loss_terms(out, target.detach(), ranker, content, lambda_r)
    loss = torch.stack([t.reshape(()) for t in terms.values()]).sum()
    if not torch.isfinite(loss):
        raise MethodOutputError(f"hillie: fine-tuning loss became {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}


def finetune(
    method: Any,
    ranker: nn.Module,
    content: ContentLoss | None,
    lows: Sequence[Path],
    cfg: Mapping[str, Any],
    *,
    checkpoint: Path,
    seed: int,
    device: torch.device,
    log: Callable[[int, Mapping[str, float]], None] = lambda s, v: None,
    progress: Callable[[int, int], None] = lambda d, t: None,
) -> dict[str, Any]:
    """Fine-tune ``method`` in place for ``cfg["steps"]`` steps, resumable from ``checkpoint``.

    The frozen target is ``method`` as it is when the stage starts (or as saved in the
    checkpoint's ``previous`` entry on resume).
    """
    from llbench.api.training import Patches

    steps = int(cfg["steps"])
    crop = int(cfg.get("crop", 0))
    if crop <= 0:
        from .ranker import _check_uniform

        _check_uniform(list(lows))
    data = Patches(
        [(p,) for p in lows],
        patch=crop,
        batch_size=int(cfg["batch_size"]),
        seed=seed,
        kinds=("image",),
        augment=True,
    )
    ranker.eval().requires_grad_(False)
    params = trainable_parameters(method, cfg.get("modules") or ())
    optimizer = torch.optim.Adam(params, lr=float(cfg["lr"]))
    step = 0
    state = None
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        method.load_state_dict(state["previous"])
    previous = frozen_copy(method)
    previous_state = {k: v.detach().clone() for k, v in method.state_dict().items()}
    if state is not None:
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
    resumed = step
    every = max(1, int(cfg.get("checkpoint_every", 500)))

    def save() -> None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = checkpoint.with_suffix(".tmp")
        torch.save(
            {
                "method": method.state_dict(),
                "previous": previous_state,
                "optimizer": optimizer.state_dict(),
                "step": step,
            },
            tmp,
        )
        tmp.replace(checkpoint)

    started = time.perf_counter()
    lambda_r = float(cfg["lambda_r"])
    for m in method.modules():
        m.train()
    try:
        while step < steps:
            (low,) = data.batch(step)
            values = finetune_step(
                method,
                previous,
                ranker,
                content,
                low.to(device),
                optimizer,
                lambda_r=lambda_r,
                noise_seed=seed * 1_000_003 + step,
            )
            step += 1
            log(step, values)
            progress(step, steps)
            if step % every == 0 or step == steps:
                save()
    finally:
        for m in method.modules():
            m.eval()
    return {
        "steps": steps,
        "resumed_from_step": resumed,
        "seconds": round(time.perf_counter() - started, 3),
    }
