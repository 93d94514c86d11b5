"""Method configuration: paper defaults, presets and user files (TOML or YAML).

The effective config of a run is ``default_config`` (the paper's settings) deep-merged with the
chosen preset and then with the user's file. Keys the method does not know are an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llbench.errors import ConfigError


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {path} must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError without importing yaml at module import
        if type(exc).__module__.startswith("yaml"):
            raise ConfigError(f"cannot parse {path}: {exc}") from exc
        raise
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a table/mapping at the top level")
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; unknown keys raise :class:`ConfigError`."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if key not in out:
            known = ", ".join(sorted(out)) or "(none)"
            raise ConfigError(f"unknown config key {where + key!r}; known keys: {known}")
        if isinstance(out[key], Mapping) and isinstance(value, Mapping):
            out[key] = merge(out[key], value, where=f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def effective_config(
    defaults: Mapping[str, Any],
    presets: Mapping[str, Mapping[str, Any]],
    preset: str | None = None,
    user: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    config = copy.deepcopy(dict(defaults))
    if preset:
        if preset not in presets:
            known = ", ".join(sorted(presets)) or "(this method has none)"
            raise ConfigError(f"unknown preset {preset!r}; presets: {known}")
        config = merge(config, presets[preset])
    if user:
        config = merge(config, user)
    return config
