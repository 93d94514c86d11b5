"""The plugin contract: what a method, dataset, metric or segmenter plugin registers.

A plugin's hook calls ``register(Spec(...))``. A spec is plain metadata plus a ``build``
callable; nothing heavy is imported or constructed until ``build`` is called, so listing plugins
stays fast. See ``docs/plugins.md`` and the README's "Write a plugin" section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pathlib import Path

    import torch

    from llbench.api.datasets import Dataset
    from llbench.api.methods import Method

Supervision = Literal[
    "none", "zero-reference", "unpaired", "paired", "semi-supervised", "human-in-the-loop"
]
SUPERVISIONS: tuple[str, ...] = (
    "none",
    "zero-reference",
    "unpaired",
    "paired",
    "semi-supervised",
    "human-in-the-loop",
)
MetricKind = Literal["full-reference", "no-reference", "task", "efficiency"]
METRIC_KINDS: tuple[str, ...] = ("full-reference", "no-reference", "task", "efficiency")
METRIC_NEEDS: frozenset[str] = frozenset(
    {"reference", "input", "weights", "masks", "segmenter", "method"}
)


def _always_available() -> str | None:
    return None


def _no_weight_files() -> Sequence[Path]:
    return ()


@dataclass(frozen=True)
class WeightsRef:
    """Released weights of a paper: where they are published and their sha256.

    ``--weights official`` looks for ``<cache>/weights/<method>/<filename>`` and downloads it
    from ``url`` (verifying ``sha256``) when it is absent and the network allows. Where the
    authors published no hash, ``sha256`` is empty: the download is then not verified, and the
    hash of the file used is recorded in each run's provenance.
    """

    url: str
    sha256: str | None
    filename: str
    source: str = ""


@dataclass(frozen=True)
class PublishedValue:
    """A number a paper printed: ``value`` of ``metric`` for ``method`` on ``dataset``.

    ``method``, ``dataset`` and ``metric`` are llbench names (a method or dataset llbench does
    not have keeps a lower-case id of its own, e.g. ``hwmnet``, ``darkcityscape``); ``metric`` is
    the llbench metric whose definition reproduces the paper's column, and ``approximate`` is
    true where it is only the closest one (the paper's protocol differs; ``note`` says how).
    ``table`` names where it was printed (``"Table 1"``); ``paper`` is filled in from the file or
    spec that ships it. An empty ``method`` means the method of the spec that ships the value.
    """

    dataset: str
    metric: str
    value: float
    method: str = ""
    table: str = ""
    paper: str = ""
    note: str = ""
    approximate: bool = False


@dataclass(frozen=True)
class MethodSpec:
    """An enhancement method.

    ``build(config, device)`` returns a :class:`llbench.api.methods.Method`. ``default_config`` holds
    the paper's published settings; user config files and presets override keys of it.
    ``presets`` maps a preset name (``quick`` for short CPU runs) to overrides that keep the same
    code path. ``training_protocol`` names the dataset the paper trained on: ``llbench run
    --protocol paper`` trains there whatever the test datasets (``sice`` for Zero-DCE and SGZ).

    ``published`` holds the numbers the method's paper printed, shown by ``llbench report
    --published`` beside the measured ones: a sequence of :class:`PublishedValue`, or the path of
    a TOML file (relative to the plugin's package folder; format in ``docs/reports.md``). Left
    ``None``, a file named ``published.toml`` in the folder of the module that defines ``build``
    is read when present, so a plugin ships its paper's tables by adding that one file. The same
    file may hold the paper's rows for other methods (its baselines) and the layout of its tables
    (``llbench report --preset <plugin>-table1``).

    The run key hashes the Python source files of the plugin's package, so results computed by
    older code are never reused; ``version`` still names deliberate changes of results, and
    code the plugin imports from other packages is covered only by bumping ``version``.
    """

    name: str
    build: Callable[[Mapping[str, Any], torch.device], Method]
    summary: str
    paper: str = ""
    supervision: Supervision = "none"
    trains: bool = False
    default_config: Mapping[str, Any] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    official_weights: WeightsRef | None = None
    version: str = "1"
    published: Sequence[PublishedValue] | str | None = None
    training_protocol: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.supervision not in SUPERVISIONS:
            raise ValueError(
                f"method {self.name!r}: supervision {self.supervision!r} is not one of {SUPERVISIONS}"
            )


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset. ``build(data_root)`` returns a :class:`llbench.api.datasets.Dataset`."""

    name: str
    build: Callable[[Path], Dataset]
    summary: str
    paired: bool
    splits: tuple[str, ...] = ("train", "test")
    masks: bool = False
    source: str = ""
    version: str = "1"

    def __post_init__(self) -> None:
        _check_name(self.name)


@dataclass(frozen=True)
class MetricSpec:
    """A quality metric.

    ``build(device, options)`` returns a :class:`llbench.api.metrics.Metric` (per image),
    a :class:`~llbench.api.metrics.DatasetMetric` (one value from the whole split, e.g. mIoU) or
    an :class:`~llbench.api.metrics.EfficiencyMetric` (a property of the method). ``options``
    carries run options such as ``segmenter``. ``available()`` returns None when the metric can
    run here, else a message saying what is missing and where to put it.
    """

    name: str
    build: Callable[[torch.device, Mapping[str, Any]], Any]
    summary: str
    kind: MetricKind
    higher_better: bool
    definition: str
    score_range: tuple[float, float] | None = None
    needs: frozenset[str] = frozenset()
    available: Callable[[], str | None] = _always_available
    default: bool = True
    version: str = "1"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.kind not in METRIC_KINDS:
            raise ValueError(
                f"metric {self.name!r}: kind {self.kind!r} is not one of {METRIC_KINDS}"
            )
        unknown = set(self.needs) - METRIC_NEEDS
        if unknown:
            raise ValueError(f"metric {self.name!r}: unknown needs {sorted(unknown)}")

    @property
    def arrow(self) -> str:
        return "\u2191" if self.higher_better else "\u2193"


@dataclass(frozen=True)
class SegmenterSpec:
    """A semantic segmenter used by task metrics (mIoU, mPA).

    ``build(device)`` returns an object with ``predict(images) -> LongTensor (N, H, W)``.
    ``weight_files()`` lists the files whose contents determine its predictions (checkpoints it
    loads), present or not: llbench hashes them into the identity of every task score and
    reference row, so scores made with other weights (a retrained or replaced checkpoint) are
    never reused as if they were these. ``version`` does the same for code changes.
    """

    name: str
    build: Callable[[torch.device], Any]
    summary: str
    classes: tuple[str, ...]
    available: Callable[[], str | None] = _always_available
    version: str = "1"
    weight_files: Callable[[], Sequence[Path]] = _no_weight_files

    def __post_init__(self) -> None:
        _check_name(self.name)


@dataclass(frozen=True)
class ExecutorSpec:
    """Where shards of work run: a local process pool, Slurm through submitit, Ray.

    ``build(options)`` returns an executor (see :mod:`llbench.api.executors`); ``options`` holds
    the command line's and config file's executor settings (workers, partition, address...).
    """

    name: str
    build: Callable[[Mapping[str, Any]], Any]
    summary: str
    available: Callable[[], str | None] = _always_available
    version: str = "1"

    def __post_init__(self) -> None:
        _check_name(self.name)


@dataclass(frozen=True)
class AnnotatorSpec:
    """Who labels image pairs for human-in-the-loop training (HiLLIE): people through the study
    server, a simulated committee of models, an oracle.

    ``build(options)`` returns an annotator (see :mod:`llbench.api.annotators`). ``human`` says
    whether labels come from people (a run may then wait for them); ``leaks_supervision`` marks
    annotators that read reference images, so reports can flag their results as an ablation.
    """

    name: str
    build: Callable[[Mapping[str, Any]], Any]
    summary: str
    human: bool = False
    leaks_supervision: bool = False
    available: Callable[[], str | None] = _always_available
    version: str = "1"

    def __post_init__(self) -> None:
        _check_name(self.name)


def _check_name(name: str) -> None:
    ok = name and all(c.isalnum() or c in "-_+." for c in name) and name[0].isalnum()
    if not ok or name != name.lower():
        raise ValueError(
            f"plugin name {name!r} must be lower case letters, digits and - _ + . "
            "(starting with a letter or digit)"
        )
