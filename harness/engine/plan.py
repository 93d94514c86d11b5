"""Planning a run: names and options in, a :class:`RunPlan` out (specs, effective config,
samples, metrics, manifest hash), and the run key that identifies its results.

Planning reads the dataset's file list and hashes its manifest but builds no method and computes
nothing; :mod:`llbench.engine.runner` executes plans.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llbench import paths
from llbench.api.datasets import Dataset, Sample
from llbench.api.specs import DatasetSpec, MethodSpec, MetricSpec
from llbench.config import effective_config, load_config_file
from llbench.device import resolve_device
from llbench.errors import ConfigError, DatasetError
from llbench.io.manifests import samples_manifest_hash
from llbench.pluginhost.host import PluginHost, get_host


@dataclass
class RunPlan:
    """Everything that determines a run, resolved from names; see :func:`plan_run`."""

    method: MethodSpec
    dataset: DatasetSpec
    data: Dataset
    split: str
    samples: list[Sample]
    config: dict[str, Any]
    metrics: list[MetricSpec]
    seed: int
    device: torch.device
    home: Path
    data_root: Path
    manifest_hash: str
    preset: str | None = None
    limit: int | None = None
    batch_size: int = 1
    weights: str | Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    train_dataset: DatasetSpec | None = None
    train_data: Dataset | None = None
    source_hash: str | None = None

    @property
    def training_spec(self) -> DatasetSpec:
        """The dataset whose training split trains the method (default: the test dataset)."""
        return self.train_dataset or self.dataset

    @property
    def training_data(self) -> Dataset:
        return self.train_data or self.data

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def key(self, weights_hash: str | None) -> str:
        """The run key: a hash of what determines the outputs (not the metrics, which can be
        added later without enhancing again), including the hash of the method plugin's source
        files (:func:`plugin_source_hash`), so changed code never reuses old outputs."""
        return hash_json(
            {
                "method": self.method.name,
                "method_version": self.method.version,
                "method_source": self.source_hash,
                "config": self.config,
                "dataset": self.dataset.name,
                "dataset_version": self.dataset.version,
                "split": self.split,
                "manifest": self.manifest_hash,
                "weights": weights_hash,
                "seed": self.seed,
                "limit": self.limit,
            }
        )[:20]

    def out_dir(self, key: str) -> Path:
        return self.home / "runs" / self.method.name / self.dataset.name / key


def plan_run(
    method: str,
    dataset: str,
    *,
    split: str = "test",
    metrics: Sequence[str] | None = None,
    config: str | Path | dict[str, Any] | None = None,
    preset: str | None = None,
    seed: int = 0,
    device: str = "auto",
    weights: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 1,
    segmenter: str | None = None,
    efficiency_size: str | None = None,
    home: str | Path | None = None,
    data_root: str | Path | None = None,
    train_dataset: str | None = None,
    protocol: str | None = None,
    host: PluginHost | None = None,
) -> RunPlan:
    """Resolve names and options into a :class:`RunPlan`; bad input raises before any work.

    ``train_dataset`` names the dataset whose training split trains the method (default: the
    test dataset); ``protocol="paper"`` takes it from the method's declared training protocol
    (:attr:`MethodSpec.training_protocol`, e.g. SICE for Zero-DCE and SGZ).
    """
    host = host or get_host(home, data_root)
    mspec = host.method(method)
    dspec = host.dataset(dataset)
    if protocol not in (None, "paper", "same"):
        raise ConfigError(f"unknown --protocol {protocol!r}: use `paper` or `same`")
    if protocol == "paper":
        if train_dataset is not None:
            raise ConfigError("give --protocol paper or --train-dataset, not both")
        if not mspec.trains:
            train_dataset = None
        elif not mspec.training_protocol:
            raise ConfigError(
                f"method {mspec.name!r} declares no training protocol; name one with --train-dataset"
            )
        else:
            train_dataset = mspec.training_protocol
    home_dir = paths.home(home)
    droot = paths.data_root(data_root, home_dir)
    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1")
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    cfg = method_config(mspec, config, preset)
    options: dict[str, Any] = {}
    if segmenter:
        options["segmenter"] = segmenter
    if efficiency_size:
        options["size"] = efficiency_size
    metric_specs = select_metrics(host, dspec, metrics)
    ds = dspec.build(droot)
    ds.prepare()
    samples = ds.samples(split)
    if not samples:
        raise DatasetError(f"dataset {dataset!r} has no images in its {split!r} split")
    if limit is not None:
        samples = samples[:limit]
    tspec = tdata = None
    if train_dataset is not None and train_dataset != dspec.name:
        if not mspec.trains:
            raise ConfigError(f"method {mspec.name!r} does not train; drop --train-dataset")
        tspec = host.dataset(train_dataset)
        tdata = tspec.build(droot)
    return RunPlan(
        method=mspec,
        dataset=dspec,
        data=ds,
        split=split,
        samples=samples,
        config=cfg,
        metrics=metric_specs,
        seed=seed,
        device=resolve_device(device),
        home=home_dir,
        data_root=droot,
        manifest_hash=samples_manifest_hash(ds.root, samples, home_dir),
        preset=preset,
        limit=limit,
        batch_size=batch_size,
        weights=weights,
        options=options,
        train_dataset=tspec,
        train_data=tdata,
        source_hash=plugin_source_hash(mspec, host),
    )


def method_config(
    spec: MethodSpec, config: str | Path | dict[str, Any] | None, preset: str | None
) -> dict[str, Any]:
    """The effective config: defaults, then the preset, then the user's file or mapping."""
    user = load_config_file(config) if isinstance(config, (str, Path)) else (config or {})
    return effective_config(spec.default_config, spec.presets, preset, user)


def select_metrics(
    host: PluginHost, dspec: DatasetSpec, names: Sequence[str] | None
) -> list[MetricSpec]:
    """The metrics to compute: the named ones (checked against the dataset), or every default
    metric that applies to the dataset and can run here."""
    registry = host.registry("metric")
    if names:
        chosen = [registry.get(n) for n in names]
        for spec in chosen:
            problem = _applicability(spec, dspec)
            if problem:
                raise ConfigError(
                    f"metric {spec.name!r} cannot score dataset {dspec.name!r}: {problem}"
                )
            missing = spec.available()
            if missing:
                raise ConfigError(f"metric {spec.name!r} is unavailable here: {missing}")
        return chosen
    return [
        s
        for s in registry
        if s.default
        and s.kind != "efficiency"
        and not _applicability(s, dspec)
        and s.available() is None
    ]


def _applicability(spec: MetricSpec, dspec: DatasetSpec) -> str | None:
    if "reference" in spec.needs and not dspec.paired:
        return "it needs reference images and the dataset is unpaired"
    if "masks" in spec.needs and not dspec.masks:
        return "it needs segmentation masks and the dataset has none"
    return None


_SOURCE_CACHE: dict[tuple[str, int, int], str] = {}


def plugin_source_hash(spec: MethodSpec, host: PluginHost | None = None) -> str | None:
    """sha256 over the Python source files of the package that defines a method plugin.

    The package is the one of the module the plugin registered through (its entry point), or,
    for a plugin registered in process, of the module that defines ``spec.build``; a plain
    module counts alone. Every ``*.py`` file below the package's folder is hashed (path and
    content, in sorted order; data files such as ``published.toml`` are not), each file's digest
    cached by path, modification time and size, so a plan costs a few ``stat`` calls. Code the
    plugin imports from other packages is not covered: bump ``MethodSpec.version`` for that.
    None when the source cannot be found (a method defined in ``__main__``).
    """
    root = _plugin_root(spec, host)
    if root is None:
        return None
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for f in files:
        if "__pycache__" in f.parts:
            continue
        try:
            st = f.stat()
        except OSError:
            continue
        ck = (str(f), st.st_mtime_ns, st.st_size)
        h = _SOURCE_CACHE.get(ck)
        if h is None:
            h = hashlib.sha256(f.read_bytes()).hexdigest()
            _SOURCE_CACHE[ck] = h
        digest.update(f"{f.relative_to(root.parent)}\0{h}\n".encode())
    return digest.hexdigest()[:16]


def _plugin_root(spec: MethodSpec, host: PluginHost | None) -> Path | None:
    import sys

    modules = []
    if host is not None:
        try:
            info = host.infos.get(host.registry("method").origin(spec.name))
        except Exception:  # noqa: BLE001 - an unknown origin falls back to build's module
            info = None
        if info is not None and info.module:
            modules.append(info.module)
    modules.append(getattr(spec.build, "__module__", None))
    for name in modules:
        mod = sys.modules.get(name) if name else None
        file = getattr(mod, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        return path.parent if path.name == "__init__.py" else path
    return None


def hash_json(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (keys sorted; non-JSON values as ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
