"""HiLLIE: Human-in-the-Loop Training for Low-Light Image Enhancement (Zhao, Zhou, Cao, Lou,
Gu; 2025). The authors released no code; this follows the paper and the works it builds on.

HiLLIE alternates, over N = 5 stages (Algorithm 1), between an enhancer f (any trainable LLIE
model; LightenDiffusion in the paper) and a quality ranker g (a siamese VGG-style network,
Appendix E): g(0) learns NIQE's order of the outputs of f(0)'s intermediate checkpoints; at each
later stage the k = 300 output pairs of two adjacent enhancers with the largest ranker score gap
(Eq. 1) are labelled by three annotators (majority vote), g(n) learns all labels so far (Eq. 2),
and f(n) is fine-tuned into f(n+1) with ``l_con + 0.1 Sigmoid(g(n)(y))`` (Eq. 3-5).

What this plugin registers:

* method ``hillie`` (supervision ``human-in-the-loop``): the loop around ``base`` (default
  ``zero-dce++``), :mod:`.method` and :mod:`.loop`; ranker and Eq. 2 in :mod:`.ranker`, Eq. 1 in
  :mod:`.selection`, Eq. 3-5 in :mod:`.finetune`;
* annotators ``study`` (people, through ``llbench study serve``), ``simulated`` (a committee of
  no-reference models) and ``oracle`` (full-reference against held-out references; marked
  ``leaks_supervision``), :mod:`.annotators`;
* metric ``hillie-ranker``: a trained g(n) as a no-reference metric (lower is better), from
  ``<home>/weights/hillie-ranker.pt`` (``llbench hillie export-ranker``) or the file named by
  ``LLBENCH_HILLIE_RANKER``, :mod:`.metric`;
* commands ``llbench hillie status|figures|export-ranker``, :mod:`.cli`.

Defaults are the paper's (Sec. 4.1): k = 300, 3 annotators, ranker batch 8 with Adam (weight
decay 1e-4), g(0) lr 1e-4 halved every 20k of 60k iterations, g(n) lr 1e-5 for 5k iterations
from g(n-1), margin 0.5; enhancer Adam lr 1e-5, batch 2, 10k iterations per stage,
lambda_R = 0.1; full images. Choices where the paper is silent (docs/hillie.md lists them):
three intermediate snapshots of the base's pretraining at 1/4, 1/2 and 3/4 of its steps (about
four versions per input, the paper's ~2,000 images from LOL's 485), the evaluation split for
Fig. 3 and Table 3 is the dataset's test split, Fig. 5 scores every g(n) on every label stage.

``quick`` preset: the base's quick preset cut to 24 steps, two snapshots, simulated annotators,
k = 8, 48 px crops, ranker scoring at 64 px, a few steps per stage (lr 1e-4), four evaluation
images, random VGG features unless vgg16 is cached; the same code path, for CPU minutes on
``synthetic-unpaired``.
"""

from __future__ import annotations

from llbench.api import AnnotatorSpec, MethodSpec, MetricSpec, hookimpl

BUILTIN_ANNOTATORS = ("study", "simulated", "oracle")

PAPER = (
    "Zhao, Zhou, Cao, Lou, Gu, HiLLIE: Human-in-the-Loop Training for Low-Light Image "
    "Enhancement, 2025"
)

DEFAULT_CONFIG = {
    "base": "zero-dce++",
    "base_preset": "",
    "base_config": None,
    "base_weights": "",
    "base_checkpoints": [],
    "pretrain_snapshots": 3,
    "stages": 5,
    "k": 300,
    "votes": 3,
    "annotator": "study",
    "study": {"host": "127.0.0.1", "port": 8000, "title": ""},
    "simulated": {"committee": ["exposedness", "colorfulness", "entropy"], "noise": 0.0},
    "oracle": {"metric": "lpips", "references": ""},
    "annotator_options": None,
    "ranker_crop": 0,
    "score_size": 0,
    "ranker_g0": {
        "steps": 60000,
        "lr": 1e-4,
        "halve_every": 20000,
        "batch_size": 8,
        "weight_decay": 1e-4,
        "margin": 0.5,
        "checkpoint_every": 1000,
    },
    "ranker_gn": {
        "steps": 5000,
        "lr": 1e-5,
        "halve_every": 0,
        "batch_size": 8,
        "weight_decay": 1e-4,
        "margin": 0.5,
        "checkpoint_every": 500,
    },
    "finetune": {
        "steps": 10000,
        "lr": 1e-5,
        "batch_size": 2,
        "lambda_r": 0.1,
        "checkpoint_every": 500,
    },
    "finetune_crop": 0,
    "finetune_modules": [],
    "vgg_file": "",
    "vgg_if_missing": "stop",
    "vgg_pool4": False,
    "eval_split": "test",
    "eval_limit": 0,
    "stage_metrics": ["niqe", "pi", "musiq", "psnr", "ssim"],
}

PRESETS = {
    # Sec. 4.1 as published: LightenDiffusion pretrained with its own settings, then its UNet
    # fine-tuned through the 20-step DDIM sampler (decomposition network frozen).
    "paper": {"base": "lightendiffusion", "finetune_modules": ["Unet"]},
    "quick": {
        "base_preset": "quick",
        "base_config": {"max_steps": 24, "checkpoint_every": 8},
        "pretrain_snapshots": 2,
        "annotator": "simulated",
        "k": 8,
        "ranker_crop": 48,
        "score_size": 64,
        "finetune_crop": 48,
        "ranker_g0": {"steps": 8, "batch_size": 4, "halve_every": 4, "checkpoint_every": 4},
        "ranker_gn": {"steps": 4, "lr": 1e-4, "batch_size": 4, "checkpoint_every": 4},
        "finetune": {"steps": 4, "lr": 1e-4, "checkpoint_every": 2},
        "vgg_if_missing": "random",
        "eval_limit": 4,
        "stage_metrics": ["niqe", "psnr", "ssim"],
    },
}


def build(config, device):
    from .method import HiLLIE

    return HiLLIE(config, device)


def _annotator(kind: str):
    def build_annotator(options):
        from . import annotators

        return getattr(annotators, f"build_{kind}")(options)

    return build_annotator


def _ranker_available(home=None):
    from .ranker_file import ranker_missing

    return ranker_missing(home)


def _ranker_file(home=None):
    from .ranker_file import ranker_path

    return ranker_path(home)


def _ranker_metric(device, options):
    from .metric import RankerMetric

    return RankerMetric(device, options)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="hillie",
            build=build,
            summary="HiLLIE: a base LLIE model fine-tuned over 5 stages with a ranker trained on "
            "pairwise labels of people (or simulated annotators)",
            paper=PAPER,
            supervision="human-in-the-loop",
            trains=True,
            training_protocol="lol-unpaired",
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
        )
    )


@hookimpl
def register_annotators(register):
    register(
        AnnotatorSpec(
            name="study",
            build=_annotator("study"),
            summary="people label each pair in the browser (llbench study serve); 3 per pair, "
            "majority vote; the run waits for them",
            human=True,
        )
    )
    register(
        AnnotatorSpec(
            name="simulated",
            build=_annotator("simulated"),
            summary="a committee of 3 no-reference measures that are not evaluation metrics "
            "(exposedness, colourfulness, entropy by default), majority vote",
        )
    )
    register(
        AnnotatorSpec(
            name="oracle",
            build=_annotator("oracle"),
            summary="a full-reference metric against held-out references (ablation: leaks "
            "supervision)",
            leaks_supervision=True,
        )
    )


@hookimpl
def register_metrics(register, home):
    register(
        MetricSpec(
            name="hillie-ranker",
            build=lambda device, options: _ranker_metric(
                device, {"hillie_ranker": str(_ranker_file(home)), **dict(options)}
            ),
            summary="HiLLIE's trained ranker g(n) as a no-reference quality score",
            kind="no-reference",
            higher_better=False,
            definition="score of a HiLLIE ranker (Appendix E) exported from a run with "
            "`llbench hillie export-ranker`; relative quality, lower is better, comparable only "
            "between images scored by the same ranker",
            needs=frozenset({"weights"}),
            available=lambda: _ranker_available(home),
            default=False,
        )
    )


@hookimpl
def report_figures(trainings, out_dir, fmt):
    """``llbench report --figures``: Fig. 3, 5, 10 and Table 3 of each HiLLIE training shown."""
    from pathlib import Path

    from .figures import draw_all

    written = []
    for t in trainings:
        if t["method"] == "hillie" and Path(t["workdir"]).is_dir():
            written += draw_all(t["workdir"], Path(out_dir) / f"hillie-{t['key'][:12]}")
    return written


@hookimpl
def register_commands(cli):
    from .cli import hillie

    cli.add_command(hillie)
