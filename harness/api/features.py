"""Decoder-feature hook: how a framework attaches modules inside any trainable method's decoder.

Frameworks such as SKF (Wu et al., CVPR 2023, Sec. 3.2) refine an enhancement network's decoder
features with a semantic prior. To make that work for any network, built-in or third-party, a
:class:`~llbench.api.methods.TrainableMethod` declares its decoder *sites*: named submodules of
``method.net`` whose outputs are decoder feature maps, with their channel count and stride. A
framework then calls :func:`transform_site`, which installs a PyTorch forward hook on that
submodule replacing its output by ``fn(output)``; the network's own code is untouched.

Example (a third-party method)::

    class MyMethod(TrainableMethod):
        def decoder_sites(self):
            return (DecoderSite("up2", "decoder.up2", channels=64, stride=2),
                    DecoderSite("up1", "decoder.up1", channels=32, stride=1))

    handle = transform_site(method, "up1", lambda f: f + refine(f))
    ...
    handle.remove()

Sites are listed coarse to fine. A site's module must return a single tensor
``(N, channels, ceil(H / stride), ceil(W / stride))`` (up to the network's rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from llbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from llbench.api.methods import TrainableMethod


@dataclass(frozen=True)
class DecoderSite:
    """One decoder feature map of a method: ``module`` is a dotted path inside ``method.net``."""

    name: str
    module: str
    channels: int
    stride: int = 1


def find_site(method: TrainableMethod, name: str) -> DecoderSite:
    """The site called ``name``; an error listing the method's sites when there is none."""
    sites = tuple(method.decoder_sites())
    for site in sites:
        if site.name == name:
            return site
    known = ", ".join(s.name for s in sites) or "none"
    raise ConfigError(
        f"{type(method).__name__} has no decoder site {name!r} (its sites: {known}); "
        "a method exposes sites by overriding TrainableMethod.decoder_sites()"
    )


def site_module(method: TrainableMethod, site: DecoderSite) -> torch.nn.Module:
    """The submodule of ``method.net`` a site names."""
    try:
        return method.net.get_submodule(site.module)
    except AttributeError as exc:
        raise ConfigError(
            f"{type(method).__name__}: decoder site {site.name!r} names {site.module!r}, "
            f"which is not a submodule of its network ({exc})"
        ) from exc


def transform_site(
    method: TrainableMethod, name: str, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.utils.hooks.RemovableHandle:
    """Replace the output ``f`` of decoder site ``name`` by ``fn(f)`` on every forward pass.

    Returns the hook handle; ``handle.remove()`` restores the plain network. ``fn`` must keep the
    feature's shape (the rest of the decoder consumes it).
    """
    site = find_site(method, name)
    module = site_module(method, site)

    def hook(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ConfigError(
                f"decoder site {site.name!r} ({site.module}) returns "
                f"{type(output).__name__}, not a tensor"
            )
        new = fn(output)
        if new.shape != output.shape:
            raise ConfigError(
                f"a transform of decoder site {site.name!r} changed its shape from "
                f"{tuple(output.shape)} to {tuple(new.shape)}"
            )
        return new

    return module.register_forward_hook(hook)
