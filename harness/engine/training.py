"""Training a method on a dataset's training split, once per training key.

The training key hashes the method and version, its effective config, the dataset and the
manifest of its training split, and the seed. A finished training's weights
(``<home>/weights/<method>-<dataset>-<key>.pt``) are reused by every later run with that key;
an interrupted one resumes from its checkpoint in ``<home>/train/<key>/``. A training that
waits for people (:class:`~llbench.errors.WaitingForInput`) is stored as ``waiting``.
"""

from __future__ import annotations

import json
import random
import shutil
import time

import numpy as np
import torch

from llbench.api.methods import Method, TrainableMethod, TrainContext
from llbench.engine.plan import RunPlan, hash_json
from llbench.engine.provenance import base_provenance
from llbench.engine.weights import Weights
from llbench.errors import DatasetError, LLBenchError, WaitingForInput
from llbench.io.hashing import sha256_file
from llbench.io.manifests import samples_manifest_hash
from llbench.progress import Progress
from llbench.store.database import Store


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(plan: RunPlan, meth: Method, store: Store, force: bool, bar: Progress) -> Weights:
    """Weights of ``meth`` trained on ``plan``'s dataset (reused when already trained)."""
    spec, dspec, ds = plan.method, plan.dataset, plan.data
    if not isinstance(meth, TrainableMethod):
        raise LLBenchError(
            f"method {spec.name!r} declares trains=True but is not a TrainableMethod"
        )
    try:
        samples = ds.samples("train")
    except DatasetError as exc:
        raise DatasetError(
            f"method {spec.name!r} trains on the training split, which dataset {dspec.name!r} "
            f"lacks here ({exc}). Place the training data, train on another dataset, or pass "
            "--weights PATH / --weights official."
        ) from exc
    if not samples:
        raise DatasetError(f"dataset {dspec.name!r} has an empty training split")
    manifest = samples_manifest_hash(ds.root, samples, plan.home)
    tkey = hash_json(
        {
            "method": spec.name,
            "version": spec.version,
            "config": plan.config,
            "dataset": dspec.name,
            "manifest": manifest,
            "seed": plan.seed,
        }
    )[:20]
    weights_path = plan.home / "weights" / f"{spec.name}-{dspec.name}-{tkey}.pt"
    workdir = plan.home / "train" / tkey
    row = store.get_training(tkey)
    if force:
        shutil.rmtree(workdir, ignore_errors=True)
        weights_path.unlink(missing_ok=True)
        row = None
    info = {
        "key": tkey,
        "dataset": dspec.name,
        "train_manifest": manifest,
        "n_images": len(samples),
    }
    if row is not None and row["status"] == "finished" and weights_path.is_file():
        meth.load_weights(weights_path)
        trained = json.loads(row["provenance"] or "{}").get("method_provenance", {})
        return Weights(
            weights_path,
            sha256_file(weights_path),
            {**info, "reused": True, "method_provenance": trained},
        )
    store.upsert_training(
        tkey,
        method=spec.name,
        dataset=dspec.name,
        status="running",
        config=plan.config,
        seed=plan.seed,
        provenance=base_provenance(),
        started=time.time(),
    )
    task = bar.task(f"train {spec.name} on {dspec.name}", total=None)
    ctx = TrainContext(
        dataset=ds,
        samples=samples,
        workdir=workdir,
        seed=plan.seed,
        device=plan.device,
        log=lambda step, values: store.log_training(tkey, step, values),
        progress=lambda done, total: bar.update(task, done, total),
        home=plan.home,
        data_root=plan.data_root,
    )
    try:
        seed_everything(plan.seed)
        meth.fit(ctx)
    except WaitingForInput as exc:
        store.upsert_training(tkey, status="waiting", error=str(exc))
        raise
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.upsert_training(tkey, status=status, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        bar.done(task)
    meth.save_weights(weights_path)
    digest = sha256_file(weights_path)
    trained = meth.provenance()
    store.upsert_training(
        tkey,
        status="finished",
        weights=str(weights_path),
        weights_hash=digest,
        finished=time.time(),
        error=None,
        provenance={**base_provenance(), "method_provenance": trained},
    )
    return Weights(weights_path, digest, {**info, "method_provenance": trained})
