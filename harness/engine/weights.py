"""Building methods and resolving their weights: one implementation for ``run`` and ``enhance``.

A method gets its weights from ``--weights PATH`` (a plain state dict), ``--weights official``
(the paper's released checkpoint, found in or fetched into ``<cache>/weights/<method>/``), or,
for a method that trains, from a training run on the dataset's training split
(:mod:`llbench.engine.training`), stored once under ``<home>/weights/`` and reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llbench import paths
from llbench.api.methods import Method, TrainableMethod
from llbench.api.specs import MethodSpec
from llbench.errors import ConfigError, WeightsError
from llbench.io.hashing import sha256_file


@dataclass
class Weights:
    """Where a method's weights came from: the file, its sha256, and the training (if any)."""

    path: Path | None = None
    sha256: str | None = None
    training: dict[str, Any] | None = None


def official_weights(spec: MethodSpec, home: Path) -> Path:
    """The paper's released checkpoint of ``spec`` (downloaded and verified when absent)."""
    ref = spec.official_weights
    if ref is None:
        raise ConfigError(f"method {spec.name!r} has no official released weights")
    from llbench.io.download import fetch_weights

    return fetch_weights(ref, paths.cache_dir(home) / "weights" / spec.name)


def resolve_weights(spec: MethodSpec, weights: str | Path, home: Path) -> Weights:
    """The file ``--weights`` names (a path, or ``official``: fetched into the cache) and its
    sha256; an error naming the file when it is absent."""
    if str(weights) == "official":
        path = official_weights(spec, home)
    else:
        path = Path(weights).expanduser().resolve()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    return Weights(path, sha256_file(path))


def load_weights(meth: Method, spec: MethodSpec, weights: str | Path, home: Path) -> Weights:
    """Load ``--weights`` (a path or ``official``) into ``meth``."""
    if not isinstance(meth, TrainableMethod):
        raise ConfigError(f"method {spec.name!r} has no weights; drop --weights")
    got = resolve_weights(spec, weights, home)
    meth.load_weights(got.path)
    return got


def build_method(
    method: str,
    *,
    weights: str | Path | None = None,
    config: str | Path | dict[str, Any] | None = None,
    preset: str | None = None,
    device: str = "auto",
    home: str | Path | None = None,
    host: Any = None,
) -> Method:
    """A method ready for inference: built from its effective config, weights loaded when
    given, and an error when a method that learns its weights gets none."""
    from llbench.device import resolve_device
    from llbench.engine.plan import method_config
    from llbench.pluginhost.host import get_host

    spec = (host or get_host(home)).method(method)
    meth = spec.build(method_config(spec, config, preset), resolve_device(device))
    if weights is not None:
        load_weights(meth, spec, weights, paths.home(home))
    elif spec.trains:
        raise ConfigError(
            f"method {method!r} learns its weights: pass --weights PATH (e.g. a file under "
            f"<home>/weights/ written by `llbench run`) or --weights official"
        )
    return meth
