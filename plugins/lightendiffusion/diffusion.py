"""Forward diffusion and DDIM sampling in the latent space (LightenDiffusion Sec. 3.3, Eq. 4-7).

As in the authors' ``models/ddm.py`` (after ermongroup/ddim):

* betas: ``linspace(1e-4, 0.02, 1000)`` ("linear"; "quad", "const", "jsd", "sigmoid" also
  exist there), computed in float64 and stored as float32; ``abar_t = prod_{s<=t} (1 - beta_s)``
  with ``abar_{-1} = 1``.
* forward process (Eq. 4): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``.
* training timesteps: antithetic pairs, ``t`` uniform in ``[0, T)`` for the first half of the
  batch (plus one) and ``T - 1 - t`` for the rest.
* DDIM (Song et al., Eq. 12) on the uniform sub-sequence ``0, k, 2k, ... T-k`` with
  ``k = T // S`` (``S = 20`` sampling steps), visited from the largest ``t`` down, the last step
  going to ``t = -1`` (``abar = 1``), from ``x_T ~ N(0, I)``:
  ``x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``,
  ``c1 = eta sqrt((1 - abar_t/abar_s)(1 - abar_s)/(1 - abar_t))``,
  ``c2 = sqrt(1 - abar_s - c1^2)``, ``x_s = sqrt(abar_s) x0_hat + c1 z + c2 eps``; ``eta = 0``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from llbench.errors import ConfigError

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def beta_schedule(kind: str, start: float, end: float, steps: int) -> torch.Tensor:
    """The ``steps`` betas of schedule ``kind`` (float32, computed in float64)."""
    if kind == "linear":
        betas = np.linspace(start, end, steps, dtype=np.float64)
    elif kind == "quad":
        betas = np.linspace(start**0.5, end**0.5, steps, dtype=np.float64) ** 2
    elif kind == "const":
        betas = end * np.ones(steps, dtype=np.float64)
    elif kind == "jsd":
        betas = 1.0 / np.linspace(steps, 1, steps, dtype=np.float64)
    elif kind == "sigmoid":
        betas = 1 / (np.exp(-np.linspace(-6, 6, steps)) + 1) * (end - start) + start
    else:
        raise ConfigError(
            f"unknown beta_schedule {kind!r}; use linear, quad, const, jsd or sigmoid"
        )
    return torch.from_numpy(betas).float()


def alpha_bar(betas: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``abar_t`` for integer timesteps ``t`` (``-1`` gives 1), shaped ``N x 1 x 1 x 1``."""
    padded = torch.cat([betas.new_zeros(1), betas])
    return (1 - padded).cumprod(0).index_select(0, t.long() + 1).view(-1, 1, 1, 1)


def sampling_sequence(num_timesteps: int, num_steps: int) -> list[tuple[int, int]]:
    """The ``(t, next_t)`` pairs DDIM visits, largest ``t`` first; the last ``next_t`` is -1."""
    if not 1 <= num_steps <= num_timesteps:
        raise ConfigError(
            f"num_sampling_timesteps must be in [1, {num_timesteps}], got {num_steps}"
        )
    seq = list(range(0, num_timesteps, num_timesteps // num_steps))
    nxt = [-1, *seq[:-1]]
    return list(zip(reversed(seq), reversed(nxt), strict=True))


def q_sample(x0: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """Eq. 4: the noisy latent at the level ``abar``."""
    return x0 * abar.sqrt() + eps * (1.0 - abar).sqrt()


def antithetic_timesteps(n: int, num_timesteps: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` training timesteps: ``t`` and ``T - 1 - t`` pairs (the official sampling)."""
    t = torch.randint(0, num_timesteps, (n // 2 + 1,), generator=generator)
    return torch.cat([t, num_timesteps - t - 1])[:n]


def ddim_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    abar_t: torch.Tensor,
    abar_next: torch.Tensor,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """One DDIM update from level ``abar_t`` to ``abar_next`` given the predicted noise."""
    x0 = (x_t - eps * (1 - abar_t).sqrt()) / abar_t.sqrt()
    c1 = eta * ((1 - abar_t / abar_next) * (1 - abar_next) / (1 - abar_t)).sqrt()
    c2 = ((1 - abar_next) - c1**2).sqrt()
    out = abar_next.sqrt() * x0 + c2 * eps
    if eta:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        out = out + c1 * noise
    return out


def ddim_sample(
    denoiser: Denoiser,
    cond: torch.Tensor,
    x_T: torch.Tensor,
    betas: torch.Tensor,
    num_steps: int,
    *,
    eta: float = 0.0,
    noise: Callable[[int], torch.Tensor] | None = None,
    checkpoint: bool = False,
) -> torch.Tensor:
    """Run DDIM from ``x_T`` conditioned on ``cond`` (both ``N x 3 x h x w``, in [-1, 1] scale).

    ``denoiser(cat(cond, x_t), t)`` predicts the noise. Gradients flow through every step
    unless the caller disables them; ``checkpoint=True`` recomputes each step's activations in
    the backward pass (the same gradients in far less memory). ``noise(i)`` supplies the
    fresh noise of step ``i`` when ``eta > 0``.
    """
    n = cond.shape[0]
    x = x_T
    for i, (t, t_next) in enumerate(sampling_sequence(betas.numel(), num_steps)):
        tt = torch.full((n,), float(t), device=cond.device)
        a_t = alpha_bar(betas, torch.full((n,), t, device=cond.device))
        a_next = alpha_bar(betas, torch.full((n,), t_next, device=cond.device))
        inp = torch.cat([cond, x], dim=1)
        if checkpoint and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint as ckpt

            eps = ckpt(denoiser, inp, tt, use_reentrant=False)
        else:
            eps = denoiser(inp, tt)
        z = noise(i) if (eta and noise is not None) else None
        x = ddim_step(x, eps, a_t, a_next, eta, z)
    return x
