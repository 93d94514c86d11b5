"""What a report takes from the loaded plugins: each metric's direction (higher or lower is
better), the order of a table's metric columns, and the config a method's run has without a
user config."""

from __future__ import annotations

from typing import Any

from llbench.errors import ConfigError
from llbench.pluginhost.host import PluginHost, get_host


def directions(host: PluginHost | None = None) -> dict[str, bool | None]:
    host = host or get_host()
    return {s.name: s.higher_better for s in host.registry("metric")}


def metric_order(host: PluginHost | None = None) -> list[str]:
    """Registration order puts core metrics first; used to order a table's columns."""
    host = host or get_host()
    preferred = [
        "psnr",
        "psnr_y",
        "ssim",
        "ssim_rgb",
        "ssim_skimage",
        "ssim_matlab",
        "mse",
        "psnr_gtmean",
        "ssim_gtmean",
        "ssim_rgb_gtmean",
        "lpips",
        "niqe",
        "pi",
        "musiq",
        "brisque",
        "unique",
        "loe",
        "ceiq",
        "miou",
        "mpa",
        "params",
        "flops",
        "time",
    ]
    rest = [n for n in host.registry("metric").names() if n not in preferred]
    return preferred + rest


def expected_config_fn(host: PluginHost):
    """``(method, preset) -> config`` a run would have without a user config (None if unknown)."""
    from llbench.config import effective_config

    registry = host.registry("method")

    def expected(method: str, preset: str | None) -> dict[str, Any] | None:
        if method not in registry:
            return None
        spec = registry.get(method)
        try:
            return effective_config(spec.default_config, spec.presets, preset, None)
        except ConfigError:
            return None

    return expected
