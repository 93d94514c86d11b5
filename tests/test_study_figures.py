"""The user-study figure: rating-scale axes for MOS and significance brackets between bars."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from llbench.study.figures import plot_scores, score_figure  # noqa: E402
from llbench.study.model import StudyError  # noqa: E402


def _scores(values: dict[str, float], half: float = 0.2) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "condition": list(values),
            "score": list(values.values()),
            "ci_low": [v - half for v in values.values()],
            "ci_high": [v + half for v in values.values()],
        }
    )


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_mos_bars_rise_from_the_lowest_rating_and_the_axis_spans_the_scale():
    fig = score_figure(_scores({"a": 2.5, "b": 4.1}), unit="MOS", scale=(1, 5))
    ax = fig.axes[0]
    assert ax.get_ylim() == (1.0, 5.0)
    assert [round(p.get_y(), 6) for p in ax.patches] == [1.0, 1.0]
    assert [round(p.get_y() + p.get_height(), 6) for p in ax.patches] == [2.5, 4.1]
    assert list(ax.get_yticks()) == [1, 2, 3, 4, 5]
    plt.close(fig)


def test_jod_bars_rise_from_zero_without_a_scale():
    fig = score_figure(_scores({"a": -0.8, "b": 0.0, "c": 1.3}))
    ax = fig.axes[0]
    assert sorted(round(p.get_y(), 6) for p in ax.patches) == [0.0, 0.0, 0.0]
    assert ax.get_ylim()[0] < -0.8
    plt.close(fig)


def test_neighbouring_bars_are_marked_by_the_interval_of_their_difference():
    scores = _scores({"worst": 0.0, "middle": 0.3, "best": 1.5})
    pairs = [
        # neighbours in the sorted order: worst-middle (interval straddles 0), middle-best
        {"a": "middle", "b": "worst", "diff": 0.3, "ci_low": -0.1, "ci_high": 0.7},
        {"a": "best", "b": "middle", "diff": 1.2, "ci_low": 0.6, "ci_high": 1.8},
        {"a": "best", "b": "worst", "diff": 1.5, "ci_low": 0.9, "ci_high": 2.1},  # not neighbours
    ]
    fig = score_figure(scores, pairs=pairs)
    ax = fig.axes[0]
    marks = {t.get_text(): t.xy for t in ax.texts if t.get_text() in ("*", "n.s.")}
    assert set(marks) == {"*", "n.s."}
    assert marks["n.s."][0] == pytest.approx(0.5)  # between bars 0 (worst) and 1 (middle)
    assert marks["*"][0] == pytest.approx(1.5)  # between middle and best
    # each bracket sits above both bars' interval tops
    assert marks["*"][1] > 1.5 + 0.2 and marks["n.s."][1] > 0.3 + 0.2
    assert "excludes 0" in ax.get_xlabel()
    plt.close(fig)


def test_a_negative_interval_is_significant_and_missing_intervals_draw_nothing():
    scores = _scores({"x": 0.0, "y": 1.0, "z": 2.0})
    pairs = [
        {"a": "x", "b": "y", "diff": -1.0, "ci_low": -1.6, "ci_high": -0.4},
        {"a": "y", "b": "z", "diff": -1.0, "ci_low": math.nan, "ci_high": math.nan},
    ]
    fig = score_figure(scores, pairs=pairs)
    assert [t for t in _texts(fig) if t in ("*", "n.s.")] == ["*"]
    plt.close(fig)
    fig = score_figure(scores, pairs=[pairs[1]])
    assert not [t for t in _texts(fig) if t in ("*", "n.s.")]
    assert not fig.axes[0].get_xlabel()  # no footnote without a bracket
    plt.close(fig)


def test_bad_scale_and_suffix_are_refused(tmp_path):
    with pytest.raises(StudyError, match="lowest < highest"):
        score_figure(_scores({"a": 3.0}), unit="MOS", scale=(5, 1))
    with pytest.raises(StudyError, match="must end in"):
        plot_scores(_scores({"a": 3.0}), tmp_path / "fig.jpg")


def test_plot_scores_writes_the_figure_with_the_options(tmp_path):
    pairs = [{"a": "a", "b": "b", "diff": -1.6, "ci_low": -2.0, "ci_high": -1.1}]
    p = plot_scores(
        _scores({"a": 2.5, "b": 4.1}), tmp_path / "mos.png", unit="MOS", scale=(1, 5), pairs=pairs
    )
    assert p.stat().st_size > 1000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_score_draws_a_rating_study_on_its_scale_with_the_pair_intervals(
    home, tmp_path, monkeypatch
):
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from llbench.cli.study import study as study_cli
    from llbench.study import RatingSource, StudyServer, StudyStore, create_rating_study, figures

    entries = []
    for m, v in (("he", 20), ("lime", 120), ("sgz", 220)):
        for img in ("a", "b"):
            p = home / "src" / f"{m}_{img}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((6, 8, 3), v + len(img), np.uint8)).save(p)
            entries.append(RatingSource(img, m, p))
    create_rating_study(home, "mos7", entries, scale=(1, 7))
    app = StudyServer(home, "mos7", port=0).app
    ratings = {"he": 2, "lime": 4, "sgz": 6}
    for k, pid in enumerate(("r1", "r2", "r3", "r4")):
        app.session(pid)
        t = app.next_trial(pid)
        while not t["done"]:
            cond = StudyStore(home).images("mos7")[t["images"][0].rsplit("/", 1)[1]].condition
            rating = ratings[cond] + (k % 2)
            t = app.answer({"participant": pid, "item": t["item"], "rating": rating})["next"]

    seen = {}
    real = figures.score_figure

    def spy(scores, **options):
        seen.update(options)
        return real(scores, **options)

    monkeypatch.setattr(figures, "score_figure", spy)
    fig = tmp_path / "mos.png"
    r = CliRunner().invoke(study_cli, ["score", "mos7", "--bootstrap", "200", "--figure", str(fig)])
    assert r.exit_code == 0, r.output
    assert fig.stat().st_size > 1000
    assert seen["unit"] == "MOS" and seen["scale"] == (1, 7) and seen["level"] == 0.95
    by_pair = {frozenset((p["a"], p["b"])): p for p in seen["pairs"]}
    assert set(by_pair) == {frozenset(x) for x in (("he", "lime"), ("he", "sgz"), ("lime", "sgz"))}
    # ratings differ by 2 per step for every observer: each neighbouring step is significant
    step = by_pair[frozenset(("lime", "sgz"))]
    assert step["ci_low"] * step["ci_high"] > 0
