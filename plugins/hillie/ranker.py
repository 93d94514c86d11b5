"""HiLLIE's image-quality ranker g (Sec. 3.2.2, Appendix E) and its training (Eq. 2).

Architecture (Appendix E, Fig. 9; the layer widths are RankSRGAN's ``Ranker_VGG12``, Zhang et
al. ICCV 2019, which the appendix describes and cites as [68]): a siamese network whose two
branches share weights, so one :class:`Ranker` scores each image of a pair. A branch is

* conv 3->64, 3x3, stride 1, bias, LeakyReLU(0.2);
* nine blocks conv -> BatchNorm (affine) -> LeakyReLU(0.2), alternating 4x4 stride-2 and 3x3
  stride-1 convolutions: 64->64 s2, 64->128, 128->128 s2, 128->256, 256->256 s2, 256->512,
  512->512 s2, 512->512, 512->512 s2;
* global average pooling ("allowing the network to handle varying input sizes"; adaptive, since
  LOL images are 600x400), Linear 512->100, LeakyReLU(0.2), Linear 100->1.

That is 13,734,281 parameters, the paper's 13.73 M. The scalar output is a relative quality
score, *lower is better* (like NIQE, Sec. 3.2.1).

Training (Eq. 2): for a pair with ranking labels ``r_n, r_m`` (lower = better; NIQE values for
g(0), 0/1 human labels afterwards) the margin ranking loss is ``max(0, p_m - p_n + eps)`` when
``r_n > r_m`` and ``max(0, p_n - p_m + eps)`` when ``r_n < r_m``, ``eps = 0.5``; pairs with equal
labels are dropped (Eq. 2 would push a tie one arbitrary way). Batch 8 pairs, Adam with weight
decay 1e-4; g(0): lr 1e-4 halved every 20k iterations, 60k iterations; g(n >= 1): lr 1e-5, 5k
iterations on all labels collected so far, initialised from g(n-1) (Sec. 4.1). Both images of a
pair get the same crop and flip (:class:`llbench.api.Patches`), so only quality differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llbench.errors import ConfigError, DatasetError, MethodOutputError, WeightsError

# (in, out, kernel, stride) of the nine conv-BN-LReLU blocks of Appendix E.
BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (64, 64, 4, 2),
    (64, 128, 3, 1),
    (128, 128, 4, 2),
    (128, 256, 3, 1),
    (256, 256, 4, 2),
    (256, 512, 3, 1),
    (512, 512, 4, 2),
    (512, 512, 3, 1),
    (512, 512, 4, 2),
)
PAPER_PARAMS = 13_734_281
EPSILON = 0.5


class Ranker(nn.Module):
    """One branch of the siamese ranker; ``forward`` returns ``(N,)`` scores (lower = better)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=True), nn.LeakyReLU(0.2, True)]
        for cin, cout, k, s in BLOCKS:
            layers += [
                nn.Conv2d(cin, cout, k, s, 1, bias=True),
                nn.BatchNorm2d(cout, affine=True),
                nn.LeakyReLU(0.2, True),
            ]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512, 100), nn.LeakyReLU(0.2, True), nn.Linear(100, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        f = F.adaptive_avg_pool2d(f, 1).flatten(1)
        return self.classifier(f).squeeze(1)

    def pair(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The siamese forward: both images through the same weights (one batch, so batch
        normalisation sees both sides of every pair, as a shared-weight pair of branches does
        when trained on a batch of pairs)."""
        scores = self(torch.cat([a, b]))
        return scores[: a.shape[0]], scores[a.shape[0] :]


def ranking_loss(
    p_a: torch.Tensor,
    p_b: torch.Tensor,
    r_a: torch.Tensor,
    r_b: torch.Tensor,
    eps: float = EPSILON,
) -> torch.Tensor:
    """Eq. 2 averaged over the pairs whose labels differ (ties dropped); 0 when all tie.

    ``r`` are ranking labels, lower = better: the worse image must score at least ``eps`` above
    the better one. Equals ``torch.nn.MarginRankingLoss(margin=eps)(p_a, p_b, y)`` with
    ``y = +1`` where ``r_a > r_b`` and ``-1`` where ``r_a < r_b``.
    """
    y = torch.sign(r_a.to(p_a.dtype) - r_b.to(p_a.dtype))
    keep = y != 0
    if not bool(keep.any()):
        return p_a.sum() * 0.0
    return F.relu(-y[keep] * (p_a[keep] - p_b[keep]) + eps).mean()


def load_ranker(path: str | Path, device: torch.device | str = "cpu") -> Ranker:
    """A ranker from a state dict saved by HiLLIE's loop (or :func:`save_ranker`)."""
    from llbench.api.methods import load_state_dict_file

    state = load_state_dict_file(path)
    net = Ranker()
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"{path} is not a HiLLIE ranker state dict: {exc}") from exc
    return net.to(device).eval()


def save_ranker(net: Ranker, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(net.state_dict(), tmp)
    tmp.replace(path)


@torch.no_grad()
def score_images(
    net: Ranker,
    images: Sequence[torch.Tensor],
    *,
    size: int = 0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Scores of ``images`` (each ``3 x H x W`` or ``1 x 3 x H x W`` in [0, 1]) in eval mode.

    ``size > 0`` first shrinks an image (area interpolation) so its longer side is at most
    ``size`` (quick CPU runs); 0 scores full images, as the paper does.
    """
    was = net.training
    net.eval()
    out = []
    try:
        for im in images:
            x = im if im.dim() == 4 else im.unsqueeze(0)
            x = shrink(x.to(device, torch.float32), size)
            out.append(net(x).reshape(-1)[0].float().cpu())
    finally:
        net.train(was)
    return torch.stack(out) if out else torch.zeros(0)


MIN_SIDE = 32  # five stride-2 convolutions: smaller inputs vanish before the last block


def shrink(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area-downscale ``x`` so its longer side is at most ``size``, keeping the shorter side at
    least :data:`MIN_SIDE` (no-op for ``size = 0`` or small images)."""
    h, w = x.shape[-2:]
    if size <= 0 or max(h, w) <= size:
        return x
    k = min(1.0, max(size / max(h, w), MIN_SIDE / min(h, w)))
    if k >= 1.0:
        return x
    return F.interpolate(x, size=(max(1, round(h * k)), max(1, round(w * k))), mode="area")


@dataclass
class RankerSchedule:
    """One regime of ranker training (Sec. 4.1): steps, lr, halvings, batch, crop."""

    steps: int
    lr: float
    batch_size: int = 8
    weight_decay: float = 1e-4
    halve_every: int = 0
    crop: int = 0
    eps: float = EPSILON
    checkpoint_every: int = 500

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], crop: int) -> RankerSchedule:
        try:
            return cls(
                steps=int(cfg["steps"]),
                lr=float(cfg["lr"]),
                batch_size=int(cfg["batch_size"]),
                weight_decay=float(cfg["weight_decay"]),
                halve_every=int(cfg.get("halve_every", 0)),
                crop=int(crop),
                eps=float(cfg.get("margin", EPSILON)),
                checkpoint_every=int(cfg.get("checkpoint_every", 500)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"hillie: bad ranker schedule {dict(cfg)}: {exc}") from exc


def train_ranker(
    net: Ranker,
    pairs: Sequence[tuple[Path, Path, float, float]],
    schedule: RankerSchedule,
    *,
    checkpoint: Path,
    seed: int,
    device: torch.device,
    log: Callable[[int, Mapping[str, float]], None] = lambda s, v: None,
    progress: Callable[[int, int], None] = lambda d, t: None,
) -> dict[str, Any]:
    """Train ``net`` on ``pairs`` ``(path_a, path_b, r_a, r_b)`` with Eq. 2, resumable.

    Every ``checkpoint_every`` steps the weights, optimizer and step go to ``checkpoint``; a
    later call with the same arguments continues from there (batches depend only on the seed
    and the step). Pairs whose labels tie are dropped up front.
    """
    from llbench.api.training import Patches

    kept = [p for p in pairs if float(p[2]) != float(p[3])]
    if not kept:
        raise DatasetError("hillie: no ranker training pair with distinct labels")
    if schedule.crop <= 0:
        _check_uniform([q for p in kept for q in p[:2]])
    data = Patches(
        [(p[0], p[1]) for p in kept],
        patch=schedule.crop,
        batch_size=schedule.batch_size,
        seed=seed,
        augment=True,
    )
    labels = torch.tensor([[float(p[2]), float(p[3])] for p in kept], dtype=torch.float64)
    opt = torch.optim.Adam(net.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    sched = None
    if schedule.halve_every > 0:
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=schedule.halve_every, gamma=0.5)
    step = 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
    resumed = step

    def save() -> None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = checkpoint.with_suffix(".tmp")
        torch.save(
            {
                "net": net.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
                "step": step,
            },
            tmp,
        )
        tmp.replace(checkpoint)

    started = time.perf_counter()
    net.to(device).train()
    every = max(1, schedule.checkpoint_every)
    try:
        while step < schedule.steps:
            a, b = (t.to(device) for t in data.batch(step))
            r = labels[data.indices(step)].to(device)
            p_a, p_b = net.pair(a, b)
            loss = ranking_loss(p_a, p_b, r[:, 0], r[:, 1], schedule.eps)
            if not torch.isfinite(loss):
                raise MethodOutputError(f"hillie ranker loss became {loss.item()} at {step + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            total = float(loss.detach())
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            log(step, {"loss": total})
            progress(step, schedule.steps)
            if step % every == 0 or step == schedule.steps:
                save()
    finally:
        net.eval()
    return {
        "pairs": len(kept),
        "dropped_ties": len(pairs) - len(kept),
        "steps": schedule.steps,
        "resumed_from_step": resumed,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _check_uniform(paths: Sequence[Path]) -> None:
    from PIL import Image

    sizes = set()
    for p in dict.fromkeys(paths):
        with Image.open(p) as im:
            sizes.add(im.size)
    if len(sizes) > 1:
        raise ConfigError(
            f"hillie: ranker batches of full images need one image size, found {sorted(sizes)}; "
            "set ranker_crop (e.g. 384) to train on aligned crops"
        )


def accuracy(scores_a: torch.Tensor, scores_b: torch.Tensor, winners: Sequence[str]) -> float:
    """Share of pairs where the lower score is on the labelled winner's side (Fig. 5)."""
    if len(winners) == 0:
        return float("nan")
    pred = ["a" if float(x) < float(y) else "b" for x, y in zip(scores_a, scores_b, strict=True)]
    return sum(p == w for p, w in zip(pred, winners, strict=True)) / len(winners)
