"""Task metrics: semantic segmentation of the enhanced images, ``miou`` and ``mpa``.

The downstream protocol of SLLEN (Sec. III-F, Table V: VOC images darkened, enhanced, segmented
by a fixed network, scored by mIoU) and SGZ (Sec. 4.5, Table 8: mIoU and mPA on DarkCityScape):
each enhanced image is segmented by a chosen segmenter (``options["segmenter"]``, default
``tiny-seg``; ``llbench run --segmenter``), and the labels are accumulated against the dataset's
masks in **one confusion matrix for the whole split** (not a mean of per-image scores). Label 255
in a mask is ignored.

With ``C[t, p]`` the number of pixels of true class ``t`` predicted as ``p``:

* ``IoU_k = C[k, k] / (sum_p C[k, p] + sum_t C[t, k] - C[k, k])``, and ``miou`` is the mean of
  ``IoU_k`` over the classes whose union is not empty, in percent;
* ``PA_k = C[k, k] / sum_p C[k, p]`` (per-class pixel accuracy, i.e. recall), and ``mpa`` is its
  mean over the classes present in the masks, in percent.

Classes that occur in neither masks nor predictions are left out of both means (the convention of
mmsegmentation and of SGZ's evaluation). The gap to the input and to the normal-light images,
which papers show beside the enhanced scores, comes from :func:`reference_scores`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from llbench._lazy import torch  # imported on first use (light plugin loading)
from llbench.api import DatasetMetric, MetricSpec, hookimpl
from llbench.errors import DatasetError, LLBenchError

IGNORE_INDEX = 255
DEFAULT_SEGMENTER = "tiny-seg"


class ConfusionMatrix:
    """A ``K x K`` confusion matrix (rows: truth, columns: prediction) accumulated with
    ``bincount``; pixels whose truth is ``ignore_index`` are skipped."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def reset(self) -> None:
        self.matrix.zero_()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred = torch.as_tensor(pred).to("cpu", torch.int64)
        target = torch.as_tensor(target).to("cpu", torch.int64)
        if pred.shape != target.shape:
            raise DatasetError(
                f"segmentation {tuple(pred.shape)} and mask {tuple(target.shape)} differ in size"
            )
        valid = target != self.ignore_index
        t, p = target[valid], pred[valid]
        k = self.num_classes
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= k):
            bad = int(t.max()) if int(t.max()) >= k else int(t.min())
            raise DatasetError(
                f"mask label {bad} is outside the segmenter's {k} classes (labels "
                f"0-{k - 1}, {self.ignore_index} = ignore): the masks and the "
                "segmenter must use the same label set"
            )
        if p.numel() and (int(p.min()) < 0 or int(p.max()) >= k):
            raise LLBenchError(f"the segmenter predicted a label outside 0-{k - 1}")
        self.matrix += torch.bincount(t * k + p, minlength=k * k).reshape(k, k)

    def iou(self) -> torch.Tensor:
        m = self.matrix.to(torch.float64)
        tp = m.diag()
        union = m.sum(0) + m.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.nan)

    def class_accuracy(self) -> torch.Tensor:
        m = self.matrix.to(torch.float64)
        gt = m.sum(1)
        return torch.where(gt > 0, m.diag() / gt.clamp(min=1), torch.nan)

    def miou(self) -> float:
        """Mean IoU in percent (NaN before any pixel was counted)."""
        return float(torch.nanmean(self.iou()) * 100.0)

    def mpa(self) -> float:
        """Mean per-class pixel accuracy in percent."""
        return float(torch.nanmean(self.class_accuracy()) * 100.0)

    def state(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "matrix": self.matrix.tolist(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        if int(state["num_classes"]) != self.num_classes:
            raise LLBenchError(
                f"saved confusion matrix has {state['num_classes']} classes, "
                f"this one {self.num_classes}"
            )
        self.matrix = torch.tensor(state["matrix"], dtype=torch.int64).reshape(
            self.num_classes, self.num_classes
        )


# -- segmenters, shared between miou and mpa ---------------------------------------------------------
_SEGMENTERS: dict[tuple, Any] = {}


def _weight_stamps(name: str) -> tuple:
    """Path, size and modification time of the segmenter's weight files as they are now."""
    from llbench.pluginhost.host import get_host

    registry = get_host().registry("segmenter")
    files = registry.get(name).weight_files() if name in registry else ()
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.is_file())


def get_segmenter(name: str, device: torch.device | str = "cpu") -> Any:
    """A built segmenter, shared by every metric of the process on the same device while its
    weight files stay the same (a retrained or replaced checkpoint is loaded again)."""
    key = (name, str(torch.device(device)), _weight_stamps(name))
    if key not in _SEGMENTERS:
        from llbench.segmenters import build_segmenter

        _SEGMENTERS[key] = build_segmenter(name, device)
    return _SEGMENTERS[key]


class _LastPrediction:
    """Remembers the labels of the last image tensor segmented, so ``miou`` and ``mpa`` updated
    with the same tensor segment it once (held by weak reference: a new tensor never matches)."""

    def __init__(self) -> None:
        self.ref: weakref.ref | None = None
        self.key: tuple | None = None
        self.labels: torch.Tensor | None = None

    def labels_for(self, segmenter: Any, images: torch.Tensor) -> torch.Tensor:
        key = (id(segmenter), images._version)
        same = self.ref is not None and self.ref() is images and key == self.key
        if not same or self.labels is None:
            self.labels = segmenter.predict(images).cpu()
            self.ref, self.key = weakref.ref(images), key
        return self.labels


_LAST = _LastPrediction()


def _as_label_batch(mask: torch.Tensor, n: int) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    if mask.dim() == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.dim() != 3 or mask.shape[0] != n:
        raise DatasetError(f"expected {n} mask(s) of shape H x W, got {tuple(mask.shape)}")
    return mask.to(torch.int64)


class SegmentationMetric(DatasetMetric):
    """``miou`` / ``mpa`` of a segmenter on the scored images (see the module docstring).

    The runner calls ``reset()``, then ``update(pred, ref, low, mask)`` per image or batch, then
    ``compute()``. ``state()`` / ``load_state()`` carry the confusion matrix across an
    interrupted run.
    """

    which = "miou"

    def __init__(
        self, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
    ):
        super().__init__(device, options)
        self.segmenter_name = str(self.options.get("segmenter") or DEFAULT_SEGMENTER)
        self.segmenter = get_segmenter(self.segmenter_name, self.device)
        self.cm = ConfusionMatrix(len(self.segmenter.classes))

    def reset(self) -> None:
        self.cm.reset()

    def update(
        self,
        pred: torch.Tensor,
        ref: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        if mask is None:
            raise DatasetError(f"{self.which} needs segmentation masks; this dataset has none")
        if pred.dim() == 3:
            pred = pred.unsqueeze(0)
        labels = _LAST.labels_for(self.segmenter, pred)
        self.cm.update(labels, _as_label_batch(mask, pred.shape[0]))

    def compute(self) -> float:
        return self.cm.miou() if self.which == "miou" else self.cm.mpa()

    def state(self) -> dict[str, Any]:
        return {"segmenter": self.segmenter_name, **self.cm.state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if state.get("segmenter", self.segmenter_name) != self.segmenter_name:
            raise LLBenchError(
                f"saved {self.which} state was made with segmenter "
                f"{state['segmenter']!r}, not {self.segmenter_name!r}"
            )
        self.cm.load_state(state)


class MeanIoU(SegmentationMetric):
    which = "miou"


class MeanPixelAccuracy(SegmentationMetric):
    which = "mpa"


# -- the gap: the dark input and the normal-light images ----------------------------------------------
def segmentation_scores(
    items: Iterable[tuple[torch.Tensor, torch.Tensor]],
    segmenter: str = DEFAULT_SEGMENTER,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """``{"miou", "mpa"}`` of ``segmenter`` over ``(images, masks)`` pairs, one confusion matrix."""
    seg = get_segmenter(segmenter, device)
    cm = ConfusionMatrix(len(seg.classes))
    for images, masks in items:
        if images.dim() == 3:
            images = images.unsqueeze(0)
        cm.update(seg.predict(images).cpu(), _as_label_batch(masks, images.shape[0]))
    return {"miou": cm.miou(), "mpa": cm.mpa()}


def reference_scores(
    samples: Iterable[Any], segmenter: str = DEFAULT_SEGMENTER, device: torch.device | str = "cpu"
) -> dict[str, dict[str, float]]:
    """mIoU and mPA of ``segmenter`` on the dark inputs and on the normal-light images.

    ``samples`` are a split's :class:`~llbench.api.datasets.Sample` objects (with ``mask``, and
    ``high`` for the upper bound). Returns ``{"input": {"miou", "mpa"}, "reference": {...}}``:
    the lower reference (no enhancement) and the upper bound (the well-lit originals), computed
    exactly as the metrics are for the enhanced images. ``"reference"`` is absent when the samples
    have no normal-light images.

    How the runner/report uses it: once per (dataset, split, segmenter), e.g.
    ``reference_scores(ds.samples("test"), options.get("segmenter", "tiny-seg"), device)``, and
    shown as two extra rows ("input (dark)", "normal light") beside the methods' ``miou``/``mpa``.
    """
    from llbench.io.images import read_image, read_mask, to_tensor

    samples = list(samples)
    if any(s.mask is None for s in samples):
        raise DatasetError("reference segmentation scores need a mask for every sample")

    def pairs(attr: str):
        for s in samples:
            yield to_tensor(read_image(getattr(s, attr))), torch.from_numpy(read_mask(s.mask))

    out = {"input": segmentation_scores(pairs("low"), segmenter, device)}
    if all(s.high is not None for s in samples):
        out["reference"] = segmentation_scores(pairs("high"), segmenter, device)
    return out


@hookimpl
def register_metrics(register):
    common = dict(
        kind="task",
        higher_better=True,
        score_range=(0.0, 100.0),
        needs=frozenset({"masks", "segmenter"}),
        version="1",
    )
    register(
        MetricSpec(
            name="miou",
            build=lambda device, options: MeanIoU(device, options),
            summary="Mean IoU (%) of a segmenter on the enhanced images (option: segmenter, "
            "default tiny-seg).",
            definition="one confusion matrix over the split; IoU_k = TP/(TP+FP+FN); mean over "
            "classes with a non-empty union; label 255 ignored; percent",
            **common,
        )
    )
    register(
        MetricSpec(
            name="mpa",
            build=lambda device, options: MeanPixelAccuracy(device, options),
            summary="Mean per-class pixel accuracy (%) of a segmenter on the enhanced images.",
            definition="one confusion matrix over the split; PA_k = TP/(TP+FN); mean over classes "
            "present in the masks; label 255 ignored; percent",
            **common,
        )
    )
