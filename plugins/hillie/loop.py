"""HiLLIE's training loop (Algorithm 1) as a resumable state machine over files in the workdir.

Stage ``n = 0`` (Phase 1): pretrain f(0) with the base method's own ``fit`` (saving
``pretrain_snapshots`` intermediate weights along the way) or load ``base_weights``; enhance the
training inputs with every intermediate enhancer and f(0); score each output with NIQE; train
g(0) on the pairs of versions of one input ordered by NIQE (ties dropped); fine-tune f(0) with
g(0) into f(1).

Stage ``n >= 1`` (Phase 2): Y(n) = f(n)(X); D(n) = {(y_i(n-1), y_i(n))}; S(n) = the top-k pairs
by g(n-1)'s score gap (Eq. 1); the annotator labels S(n) (people may take days: the annotator
raises :class:`~llbench.errors.WaitingForInput`, the run is stored as waiting, and calling
``fit`` again resumes here); g(n) is trained from g(n-1) on every label so far (S(1) .. S(n): the
text accumulates them "to avoid potential model forgetting"); f(n) is fine-tuned with g(n) into
f(n+1). After N stages the method holds f(N).

Every step writes its result atomically under ``<workdir>/stage<n>/`` and is skipped when that
file exists: ``f0.pt`` and ``snapshots/`` (stage 0), ``outputs/`` (Y(n)), ``versions/`` and
``niqe.json`` (stage 0), ``selected.json`` (S(n) with scores and gaps), ``labels.json`` (votes,
winner, agreement), ``ranker.pt`` (g(n)), ``enhancer.pt`` (f(n+1), the base method's state dict),
``eval.json`` (no-reference scores of f(n+1) on the evaluation split and Table 3's pseudo-label
accuracy of g(n)) and ``timings.json``. Ranker training and fine-tuning checkpoint themselves
(``ranker_ckpt.pt``, ``finetune_ckpt.pt``). ``summary.json`` holds Fig. 5's accuracy of every
g(n) against all collected labels. :mod:`.figures` draws the paper's figures from these files.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from llbench.api.annotators import AnnotationContext, Label, Pair
from llbench.errors import ConfigError, DatasetError

from . import ranker as R
from .finetune import finetune
from .selection import score_gaps, top_k

REFERENCE_DATASETS = {"lol-unpaired": "lol", "lolv2-unpaired": "lolv2-real"}


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _image(path: Path) -> torch.Tensor:
    from llbench.io.images import read_image, to_tensor

    return to_tensor(read_image(path))


class Loop:
    """One HiLLIE training (see the module docstring); ``run()`` goes as far as it can."""

    def __init__(self, method: Any, ctx: Any):
        self.m = method
        self.ctx = ctx
        self.cfg = method.config
        self.wd = Path(ctx.workdir)
        self.device = method.device
        self.n_stages = int(self.cfg["stages"])
        if self.n_stages < 1:
            raise ConfigError("hillie: stages must be >= 1")
        self.lows = {s.key: Path(s.low) for s in ctx.samples}
        if not self.lows:
            raise DatasetError("hillie: the training split is empty")
        self.timings: dict[str, dict[str, float]] = {}

    # -- helpers ---------------------------------------------------------------------------
    def sdir(self, n: int) -> Path:
        return self.wd / f"stage{n}"

    def log(self, prefix: str) -> Callable[[int, Mapping[str, float]], None]:
        return lambda step, values: self.ctx.log(
            step, {f"{prefix}/{k}": float(v) for k, v in values.items()}
        )

    def timed(self, n: int, what: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        path = self.sdir(n) / "timings.json"
        times = read_json(path) if path.is_file() else {}
        times[what] = round(times.get(what, 0.0) + time.perf_counter() - t0, 3)
        write_json(path, times)
        return out

    def enhance_to(self, items: Mapping[str, Path], folder: Path) -> dict[str, Path]:
        """Enhance each input with the current base weights into ``folder/<key>.png``."""
        from llbench.io.images import to_uint8, write_png

        out = {}
        for key, low in items.items():
            path = folder / f"{key}.png"
            if not path.is_file():
                with torch.no_grad():
                    y = self.m.base.enhance(_image(low).to(self.device))
                write_png(path, to_uint8(y[0].clamp(0, 1).float().cpu()))
            out[key] = path
        return out

    def load_ranker(self, n: int) -> R.Ranker:
        return R.load_ranker(self.sdir(n) / "ranker.pt", self.device)

    def score(self, net: R.Ranker, paths: list[Path]) -> list[float]:
        size = int(self.cfg["score_size"])
        return R.score_images(
            net, [_image(p) for p in paths], size=size, device=self.device
        ).tolist()

    # -- the state machine -----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        for n in range(self.n_stages):
            done = self.sdir(n) / "enhancer.pt"
            if done.is_file() and (self.sdir(n) / "eval.json").is_file():
                continue
            if n == 0:
                self.stage_zero()
            else:
                self.stage(n)
        self.m.base.load_weights(self.sdir(self.n_stages - 1) / "enhancer.pt")
        summary = self.summary()
        return summary

    def stage_zero(self) -> None:
        d = self.sdir(0)
        f0 = d / "f0.pt"
        if not f0.is_file():
            self.timed(0, "pretrain", self.pretrain)
        self.m.base.load_weights(f0)
        outputs = self.timed(0, "outputs", lambda: self.enhance_to(self.lows, d / "outputs"))
        if not (d / "ranker.pt").is_file():
            versions = self.timed(0, "versions", lambda: self.versions(outputs))
            self.timed(0, "ranker", lambda: self.train_g0(versions))
        self.finish_stage(0)

    def pretrain(self) -> None:
        """f(0): the base's own training, keeping intermediate weights (Sec. 3.2.1)."""
        d = self.sdir(0)
        snaps = d / "snapshots"
        given = str(self.cfg["base_weights"] or "")
        if given:
            self.m.base.load_weights(given)
            listed = [Path(p) for p in self.cfg["base_checkpoints"]]
            if not listed:
                raise ConfigError(
                    "hillie: g(0) trains on outputs of the base's intermediate checkpoints; with "
                    "base_weights set, list them in base_checkpoints (or leave base_weights "
                    "empty to pretrain the base here)"
                )
            from llbench.api.methods import load_state_dict_file

            snaps.mkdir(parents=True, exist_ok=True)
            for j, p in enumerate(listed):
                torch.save(load_state_dict_file(p), snaps / f"snap{j}.pt")
            self.m.base.save_weights(d / "f0.pt")
            return
        k = int(self.cfg["pretrain_snapshots"])
        from llbench.api.methods import TrainContext

        def progress(done: int, total: int) -> None:
            self.ctx.progress(done, total)
            for j in range(k):
                at = max(1, round(total * (j + 1) / (k + 1)))
                path = snaps / f"snap{j}.pt"
                if done == at and not path.is_file():
                    self.m.base.save_weights(path)

        sub = TrainContext(
            dataset=self.ctx.dataset,
            samples=self.ctx.samples,
            workdir=d / "pretrain",
            seed=self.ctx.seed,
            device=self.device,
            log=self.log("s0/pretrain"),
            progress=progress,
            home=self.ctx.home,
            data_root=self.ctx.data_root,
        )
        self.m.base.fit(sub)
        missing = [j for j in range(k) if not (snaps / f"snap{j}.pt").is_file()]
        if missing:
            raise ConfigError(
                f"hillie: the base's training reported no progress at the snapshot steps "
                f"{missing}; g(0) needs its intermediate weights (set pretrain_snapshots = 0 to "
                "train g(0) on f(0)'s outputs and the inputs only)"
            )
        self.m.base.save_weights(d / "f0.pt")

    def versions(self, outputs: dict[str, Path]) -> dict[str, dict[str, Path]]:
        """Outputs of every intermediate enhancer and of f(0), each with its NIQE."""
        d = self.sdir(0)
        snaps = sorted(
            (d / "snapshots").glob("snap*.pt"), key=lambda p: int(p.stem.removeprefix("snap"))
        )
        versions: dict[str, dict[str, Path]] = {}
        for p in snaps:
            self.m.base.load_weights(p)
            versions[p.stem] = self.enhance_to(self.lows, d / "versions" / p.stem)
        self.m.base.load_weights(d / "f0.pt")
        versions["f0"] = outputs
        if len(versions) == 1:  # no snapshots: the dark inputs are the weakest version
            versions["input"] = dict(self.lows)
        return versions

    def train_g0(self, versions: dict[str, dict[str, Path]]) -> None:
        from llbench.metrics import functional as M

        d = self.sdir(0)
        path = d / "niqe.json"
        niqe: dict[str, dict[str, float]] = read_json(path) if path.is_file() else {}
        for v, files in versions.items():
            if v in niqe:
                continue
            niqe[v] = {k: float(M.niqe(_image(p))[0]) for k, p in files.items()}
            write_json(path, niqe)
        pairs = []
        names = sorted(versions)
        for key in self.lows:
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    ra, rb = niqe[a][key], niqe[b][key]
                    if ra == ra and rb == rb and ra != rb:
                        pairs.append((versions[a][key], versions[b][key], ra, rb))
        net = R.Ranker()
        schedule = R.RankerSchedule.from_config(self.cfg["ranker_g0"], self.cfg["ranker_crop"])
        info = R.train_ranker(
            net,
            pairs,
            schedule,
            checkpoint=d / "ranker_ckpt.pt",
            seed=self.ctx.seed,
            device=self.device,
            log=self.log("s0/ranker"),
            progress=self.ctx.progress,
        )
        R.save_ranker(net, d / "ranker.pt")
        write_json(d / "ranker.json", {**info, "versions": names, "niqe_pairs": len(pairs)})

    def stage(self, n: int) -> None:
        d, prev = self.sdir(n), self.sdir(n - 1)
        self.m.base.load_weights(prev / "enhancer.pt")
        outputs = self.timed(n, "outputs", lambda: self.enhance_to(self.lows, d / "outputs"))
        if not (d / "selected.json").is_file():
            self.timed(n, "select", lambda: self.select(n, outputs))
        selected = read_json(d / "selected.json")
        if not (d / "labels.json").is_file():
            self.timed(n, "annotate", lambda: self.annotate(n, selected))
        if not (d / "ranker.pt").is_file():
            self.timed(n, "ranker", lambda: self.train_gn(n))
        self.finish_stage(n)

    def select(self, n: int, outputs: dict[str, Path]) -> None:
        prev_out = self.sdir(n - 1) / "outputs"
        keys = list(self.lows)
        g = self.load_ranker(n - 1)
        s_prev = self.score(g, [prev_out / f"{k}.png" for k in keys])
        s_new = self.score(g, [outputs[k] for k in keys])
        gaps = score_gaps(s_prev, s_new)
        chosen = top_k(gaps, int(self.cfg["k"]))
        rows = [
            {
                "id": f"s{n}-{keys[i]}",
                "content": keys[i],
                "condition_a": f"f{n - 1}",
                "path_a": str(prev_out / f"{keys[i]}.png"),
                "condition_b": f"f{n}",
                "path_b": str(outputs[keys[i]]),
                "score_a": s_prev[i],
                "score_b": s_new[i],
                "gap": gaps[i],
            }
            for i in chosen
        ]
        write_json(self.sdir(n) / "selected.json", rows)

    def annotate(self, n: int, selected: list[dict[str, Any]]) -> None:
        references = self.references() if self.m.annotator_spec.leaks_supervision else {}
        pairs = [
            Pair(
                r["id"],
                r["content"],
                r["condition_a"],
                Path(r["path_a"]),
                r["condition_b"],
                Path(r["path_b"]),
                references.get(r["content"]),
            )
            for r in selected
        ]
        from llbench import paths

        context = AnnotationContext(
            run=self.wd.name,
            stage=n,
            home=Path(self.ctx.home or paths.home(None)),
            workdir=self.sdir(n),
            seed=self.ctx.seed,
            votes=int(self.cfg["votes"]),
            device=self.device,
        )
        labels = self.m.annotator.annotate(pairs, context)
        if [lab.pair for lab in labels] != [p.id for p in pairs]:
            raise ConfigError("hillie: the annotator returned labels for other pairs")
        write_json(self.sdir(n) / "labels.json", [lab.to_dict() for lab in labels])

    def references(self) -> dict[str, Path]:
        name = str(self.m.annotator_options.get("references") or "")
        ds_name = getattr(self.ctx.dataset, "name", "")
        name = name or REFERENCE_DATASETS.get(ds_name, ds_name.removesuffix("-unpaired"))
        ds = self.ctx.open_dataset(name)
        refs = {s.key: Path(s.high) for s in ds.samples("train") if s.high is not None}
        missing = [k for k in self.lows if k not in refs]
        if missing:
            raise DatasetError(
                f"hillie oracle: dataset {name!r} has no reference for {len(missing)} training "
                f"input(s) (e.g. {missing[0]}); set oracle.references"
            )
        return refs

    def labelled(self, upto: int) -> list[tuple[dict[str, Any], Label]]:
        out = []
        for s in range(1, upto + 1):
            rows = {r["id"]: r for r in read_json(self.sdir(s) / "selected.json")}
            for lab in read_json(self.sdir(s) / "labels.json"):
                label = Label.from_dict(lab)
                out.append((rows[label.pair], label))
        return out

    def train_gn(self, n: int) -> None:
        pairs = [
            (
                Path(r["path_a"]),
                Path(r["path_b"]),
                *((0.0, 1.0) if lab.winner == "a" else (1.0, 0.0)),
            )
            for r, lab in self.labelled(n)
        ]
        net = self.load_ranker(n - 1)
        schedule = R.RankerSchedule.from_config(self.cfg["ranker_gn"], self.cfg["ranker_crop"])
        info = R.train_ranker(
            net,
            pairs,
            schedule,
            checkpoint=self.sdir(n) / "ranker_ckpt.pt",
            seed=self.ctx.seed + n,
            device=self.device,
            log=self.log(f"s{n}/ranker"),
            progress=self.ctx.progress,
        )
        R.save_ranker(net, self.sdir(n) / "ranker.pt")
        write_json(self.sdir(n) / "ranker.json", info)

    def finish_stage(self, n: int) -> None:
        d = self.sdir(n)
        if not (d / "enhancer.pt").is_file():
            self.m.base.load_weights(self.sdir(n - 1) / "enhancer.pt" if n else d / "f0.pt")
            self.timed(n, "finetune", lambda: self.finetune(n))
        if not (d / "eval.json").is_file():
            self.timed(n, "eval", lambda: self.evaluate(n))

    def finetune(self, n: int) -> None:
        d = self.sdir(n)
        cfg = {
            **self.cfg["finetune"],
            "crop": self.cfg["finetune_crop"],
            "modules": list(self.cfg["finetune_modules"]),
        }
        info = finetune(
            self.m.base,
            self.load_ranker(n),
            self.m.content_loss(),
            list(self.lows.values()),
            cfg,
            checkpoint=d / "finetune_ckpt.pt",
            seed=self.ctx.seed + 7919 * (n + 1),
            device=self.device,
            log=self.log(f"s{n}/finetune"),
            progress=self.ctx.progress,
        )
        self.m.base.save_weights(d / "enhancer.pt")
        write_json(d / "finetune.json", info)

    # -- evaluation (Fig. 3, Table 3) ------------------------------------------------------
    def eval_samples(self) -> list[Any]:
        split = str(self.cfg["eval_split"])
        try:
            samples = self.ctx.dataset.samples(split)
        except DatasetError:
            return []
        limit = int(self.cfg["eval_limit"])
        return samples[:limit] if limit > 0 else samples

    def eval_outputs(self, f: int, weights: Path) -> dict[str, Path]:
        samples = self.eval_samples()
        self.m.base.load_weights(weights)
        return self.enhance_to({s.key: Path(s.low) for s in samples}, self.wd / "eval" / f"f{f}")

    def nr_scores(self, f: int, outputs: dict[str, Path]) -> dict[str, float]:
        path = self.wd / "eval" / f"f{f}.json"
        if path.is_file():
            return read_json(path)
        from llbench.pluginhost.host import get_host

        host = get_host()
        refs = {s.key: s.high for s in self.eval_samples()}
        means: dict[str, float] = {}
        for name in self.cfg["stage_metrics"]:
            spec = host.metric(name)
            if spec.available() is not None:
                continue
            if "reference" in spec.needs and any(refs[k] is None for k in outputs):
                continue
            metric = spec.build(self.device, {})
            vals = []
            with torch.no_grad():
                for k, p in outputs.items():
                    ref = _image(refs[k]).to(self.device) if refs[k] is not None else None
                    low = _image(self.eval_low(k)).to(self.device)
                    vals.append(float(metric(_image(p).to(self.device), ref, low).reshape(-1)[0]))
            good = [v for v in vals if v == v]
            means[name] = sum(good) / len(good) if good else float("nan")
        write_json(path, means)
        return means

    def eval_low(self, key: str) -> Path:
        return next(Path(s.low) for s in self.eval_samples() if s.key == key)

    def evaluate(self, n: int) -> None:
        d = self.sdir(n)
        before = self.sdir(n - 1) / "enhancer.pt" if n else d / "f0.pt"
        out_before = self.eval_outputs(n, before)
        out_after = self.eval_outputs(n + 1, d / "enhancer.pt")
        result: dict[str, Any] = {"stage": n, "images": len(out_after)}
        if out_after:
            result[f"f{n}"] = self.nr_scores(n, out_before)
            result[f"f{n + 1}"] = self.nr_scores(n + 1, out_after)
            g = self.load_ranker(n)
            keys = list(out_after)
            sb = self.score(g, [out_before[k] for k in keys])
            sa = self.score(g, [out_after[k] for k in keys])
            result["pseudo_label_accuracy"] = sum(a < b for a, b in zip(sa, sb, strict=True)) / len(
                keys
            )
        self.m.base.load_weights(d / "enhancer.pt")
        write_json(d / "eval.json", result)

    # -- Fig. 5 ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        path = self.wd / "summary.json"
        if path.is_file():
            return read_json(path)
        labelled = self.labelled(self.n_stages - 1)
        acc: dict[str, dict[str, float]] = {}
        for m in range(self.n_stages):
            g = self.load_ranker(m)
            acc[f"g{m}"] = {}
            for s in range(1, self.n_stages):
                part = [(r, lab) for r, lab in labelled if r["id"].startswith(f"s{s}-")]
                if not part:
                    continue
                sa = self.score(g, [Path(r["path_a"]) for r, _ in part])
                sb = self.score(g, [Path(r["path_b"]) for r, _ in part])
                acc[f"g{m}"][f"S{s}"] = R.accuracy(
                    torch.tensor(sa), torch.tensor(sb), [lab.winner for _, lab in part]
                )
        out = {"stages": self.n_stages, "labels": len(labelled), "accuracy": acc}
        write_json(path, out)
        return out


def collect_stages(workdir: str | Path) -> dict[str, Any]:
    """What the stored stages say: per stage its timings, pairs, labels, agreement, ranker and
    fine-tuning summaries and evaluation (for provenance, ``llbench hillie status`` and
    figures)."""
    wd = Path(workdir)
    stages = []
    n = 0
    while (wd / f"stage{n}").is_dir():
        d = wd / f"stage{n}"
        row: dict[str, Any] = {"stage": n}
        for name in ("timings", "ranker", "finetune", "eval"):
            if (d / f"{name}.json").is_file():
                row[name] = read_json(d / f"{name}.json")
        if (d / "selected.json").is_file():
            sel = read_json(d / "selected.json")
            row["pairs"] = len(sel)
            row["gaps"] = [r["gap"] for r in sel]
        if (d / "labels.json").is_file():
            labels = read_json(d / "labels.json")
            row["labels"] = len(labels)
            row["agreement"] = sum(x["agreement"] for x in labels) / max(1, len(labels))
            row["preferred_new"] = sum(x["winner"] == "b" for x in labels) / max(1, len(labels))
        row["done"] = (d / "enhancer.pt").is_file() and (d / "eval.json").is_file()
        stages.append(row)
        n += 1
    out: dict[str, Any] = {"stages": stages}
    if (wd / "summary.json").is_file():
        out["summary"] = read_json(wd / "summary.json")
    return out
