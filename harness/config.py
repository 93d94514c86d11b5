"""Method configuration: paper defaults, presets and user files (TOML or YAML).

The effective config of a run is ``default_config`` (the paper's settings) deep-merged with the
chosen preset and then with the user's file. Keys the method does not know are an error (naming
the closest known keys), so a typo never silently falls back to a default. Each value must have
the type of the default it replaces, checked before any work starts: ``bool`` for a bool default,
an integer for an int default, any number (int or float) for a float default, a string for a
string default, a list for a list or tuple default and a table for a table default; a default of
``None`` accepts anything.
"""

from __future__ import annotations

import copy
import difflib
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
            known = ", ".join(sorted(map(str, out))) or "(none)"
            close = difflib.get_close_matches(str(key), [str(k) for k in out], n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(where + c) for c in close)}?" if close else ""
            raise ConfigError(f"unknown config key {where + str(key)!r}{hint}; known keys: {known}")
        check_type(where + str(key), out[key], value)
        if isinstance(out[key], Mapping) and isinstance(value, Mapping):
            out[key] = merge(out[key], value, where=f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a table (mapping)"
    return f"a {type(value).__name__}"


def check_type(key: str, default: Any, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` may replace ``default`` (module docstring)."""
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list | tuple):
        ok = isinstance(value, list | tuple)
    elif isinstance(default, Mapping):
        ok = isinstance(value, Mapping)
    else:
        ok = value is None or isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"config key {key!r} must be {_kind(default)} like its default {default!r}, "
            f"got {value!r} ({type(value).__name__})"
        )


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
