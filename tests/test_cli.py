"""The command line, end to end on a tiny dataset with test plugins."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from plugin_fixtures import TestPlugin, make_tiny_dataset

from llbench.cli.main import cli
from llbench.io.images import read_image, write_png
from llbench.pluginhost.host import get_host


@pytest.fixture
def env(home, monkeypatch):
    monkeypatch.setenv("LLBENCH_PLUGINS", "core-metrics,synthetic")
    get_host().register(TestPlugin, "tests")
    make_tiny_dataset(home / "data" / "tiny")
    return home


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_then_report_in_every_format(env, tmp_path):
    r = invoke("run", "--method", "brighten", "--dataset", "tiny", "--metrics", "mean")
    assert r.exit_code == 0, r.output
    assert "mean" in r.output
    r = invoke("run", "--method", "nan-method", "--dataset", "tiny", "--metrics", "mean")
    assert r.exit_code == 1 and "img3" in r.output and "NaN" in r.output
    r = invoke("report")
    assert r.exit_code == 0 and "brighten" in r.output and "nan-method" in r.output
    for fmt, marker in (
        ("md", "| Method |"),
        ("latex", "\\toprule"),
        ("html", "<table>"),
        ("csv", "method,tiny/mean"),
    ):
        out = tmp_path / f"t.{fmt}"
        r = invoke(
            "report", "--format", fmt, "--output", str(out), "--figures", str(tmp_path / "figs")
        )
        assert r.exit_code == 0, r.output
        assert marker in out.read_text()
    assert (tmp_path / "figs" / "mean.png").is_file()
    r = invoke("report", "--format", "csv", "--method", "brighten")
    assert "nan-method" not in r.output and "brighten" in r.output
    r = invoke("runs")
    assert "finished" in r.output


def test_unknown_method_is_a_clean_error(env):
    r = CliRunner().invoke(cli, ["run", "--method", "brighte", "--dataset", "tiny"])
    assert r.exit_code == 2
    assert "Did you mean: brighten" in r.output and "Traceback" not in r.output


def test_report_without_runs(env):
    r = CliRunner().invoke(cli, ["report"])
    assert r.exit_code == 1 and "no finished runs" in r.output


def test_score_folder_csv_and_json(env, tmp_path):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    for i in range(3):
        write_png(pred / f"{i}.png", np.full((8, 8, 3), 50 * i, np.uint8))
        write_png(ref / f"{i}.png", np.full((8, 8, 3), 50 * i + 10, np.uint8))
    r = invoke(
        "score",
        "--metrics",
        "mean,peak",
        "--ref",
        str(ref),
        "--output",
        str(tmp_path / "s.csv"),
        str(pred),
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "s.csv")
    assert list(df.columns) == ["image", "mean", "peak"]
    assert df["mean"].round(4).tolist() == [0.0, round(50 / 255, 4), round(100 / 255, 4)]
    r = invoke("score", "--metrics", "mean", "--output", str(tmp_path / "s.json"), str(pred))
    rows = json.loads((tmp_path / "s.json").read_text())
    assert [row["image"] for row in rows] == ["0", "1", "2"]


def test_score_reports_unmatched_and_bad_images(env, tmp_path):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    write_png(pred / "a.png", np.zeros((8, 8, 3), np.uint8))
    write_png(ref / "b.png", np.zeros((8, 8, 3), np.uint8))
    r = CliRunner().invoke(cli, ["score", "--metrics", "mean", "--ref", str(ref), str(pred)])
    assert r.exit_code == 1 and "a.png has no reference" in r.output  # that file fails only
    write_png(pred / "b.png", np.zeros((8, 8, 3), np.uint8))
    (pred / "c.png").write_bytes(b"not an image")
    r = CliRunner().invoke(cli, ["score", "--metrics", "mean", str(pred)])
    assert r.exit_code == 1 and "c.png" in r.output


def test_enhance_files_and_folders(env, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(np.full((5, 7), 40, np.uint8), "L").save(src / "grey.bmp")
    Image.fromarray(np.full((6, 6, 4), 40, np.uint8), "RGBA").save(src / "sub" / "rgba.png")
    Image.fromarray(np.full((9, 3, 3), 40, np.uint8)).save(src / "c.jpg", quality=100)
    r = invoke("enhance", "--method", "brighten", "-o", str(tmp_path / "out"), str(src))
    assert r.exit_code == 0, r.output
    out = read_image(tmp_path / "out" / "grey.png")
    assert out.shape == (5, 7, 3) and out[0, 0, 0] == round((40 / 255) ** 0.5 * 255)
    assert read_image(tmp_path / "out" / "sub" / "rgba.png").shape == (6, 6, 3)
    assert read_image(tmp_path / "out" / "c.png").shape == (9, 3, 3)
    r = CliRunner().invoke(cli, ["enhance", "--method", "scale", "-o", str(tmp_path), str(src)])
    assert r.exit_code == 2 and "--weights" in r.output


def test_list_kinds(env):
    r = invoke("list", "metrics", "--json")
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["mean"]["direction"] == "higher" and rows["mean"]["available"] == "yes"
    r = invoke("list", "datasets", "--json")
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["tiny"]["status"].startswith("present")
    assert rows["synthetic"]["paired"] is True


def test_enhance_video_keeps_fps_size_and_frames(env, tmp_path):
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("imageio_ffmpeg")
    frames = [np.full((48, 64, 3), 20 + 5 * i, np.uint8) for i in range(6)]
    iio.imwrite(tmp_path / "in.mp4", frames, fps=8, codec="libx264")
    r = invoke(
        "enhance", "--method", "brighten", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4")
    )
    assert r.exit_code == 0, r.output
    assert "6 frames, 64x48, 8 fps" in r.output
    out = list(iio.imiter(tmp_path / "out.mp4"))
    assert len(out) == 6 and out[0].shape == (48, 64, 3)
    assert iio.immeta(tmp_path / "out.mp4")["fps"] == 8
    assert out[0].mean() > frames[0].mean() + 30  # brightened


def test_export_per_image_scores(env, tmp_path):
    assert (
        invoke(
            "run", "--method", "brighten", "--dataset", "tiny", "--metrics", "mean,peak"
        ).exit_code
        == 0
    )
    r = invoke("export", "-o", str(tmp_path / "s.csv"))
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "s.csv")
    assert list(df.columns) == [
        "method", "dataset", "split", "run_key", "image", "metric", "value",
        "seed", "preset", "limit", "weights_kind", "weights_hash", "train_dataset",
    ]  # fmt: skip
    assert len(df) == 8 and set(df["metric"]) == {"mean", "peak"}
    r = invoke("export", "--format", "jsonl", "--metric", "peak")
    lines = [json.loads(line) for line in r.output.splitlines()]
    assert len(lines) == 4 and all(row["metric"] == "peak" for row in lines)


@pytest.mark.parametrize("width", [80, 200])
def test_listings_fit_the_console_with_one_line_of_prose_per_row(home, monkeypatch, width):
    from llbench.cli import common
    from llbench.pluginhost.listing import describe

    monkeypatch.setattr(common.console, "_width", width)
    r = invoke("methods")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= width
    body = [ln for ln in lines if ln.startswith("│")]
    n = len(describe("methods"))
    # paper and summary take one line per method (cut with an ellipsis, the caption says where
    # the full text is); before, they folded into dozens of lines per method at 80 columns
    assert n <= len(body) <= (n if width == 200 else 3 * n)
    assert "…" in r.output and "--json" in r.output
