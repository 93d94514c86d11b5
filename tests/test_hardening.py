"""Issue 20 defects 3, 4, 5 and 7: `score` pairing and errors, method output checks, failure
notes in reports, config types, and brackets in user-facing messages (end to end on the CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from plugin_fixtures import TestPlugin, make_tiny_dataset

from llbench.api import Method, MethodSpec, hookimpl
from llbench.cli.main import cli
from llbench.config import effective_config, merge
from llbench.engine.execute import OUTPUT_TOLERANCE, checked_enhance
from llbench.errors import ConfigError, MethodOutputError
from llbench.io.images import write_png
from llbench.pluginhost.host import get_host
from llbench.reports.tables import build_table, failure_notes


class _Returns(Method):
    def enhance(self, low):
        kind = self.config["kind"]
        if kind == "uint8":
            return (low * 255).round().to(torch.uint8)
        if kind == "over":
            return low * 0 + 1.5
        if kind == "slightly":  # float noise inside the tolerance
            return (low + OUTPUT_TOLERANCE / 2).clamp(max=1 + OUTPUT_TOLERANCE / 2)
        if kind == "odd-img2":  # out of range only on the image whose mean is highest
            return low * 0 + (2.0 if float(low.mean()) > 0.14 else 0.5)
        return low


class _Plugin:
    @hookimpl
    def register_methods(register):
        for kind in ("uint8", "over", "odd-img2"):
            register(
                MethodSpec(
                    f"returns-{kind}",
                    lambda c, d: _Returns(c, d),
                    kind,
                    default_config={"kind": kind},
                )
            )


@pytest.fixture
def env(home, monkeypatch):
    monkeypatch.setenv("LLBENCH_PLUGINS", "core-metrics,synthetic")
    get_host().register(TestPlugin, "tests")
    get_host().register(_Plugin, "tests-hardening")
    make_tiny_dataset(home / "data" / "tiny")
    return home


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# -- defect 3: score -----------------------------------------------------------------------------
def _folders(tmp_path, n=3, pred_suffix=""):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    for i in range(n):
        write_png(pred / f"{i}{pred_suffix}.png", np.full((8, 8, 3), 50 * i, np.uint8))
        write_png(ref / f"{i}.png", np.full((8, 8, 3), 50 * i + 10, np.uint8))
    return pred, ref


def test_score_one_failing_image_marks_only_its_row(env, tmp_path):
    pred, ref = _folders(tmp_path)
    (pred / "9.png").write_bytes(b"not an image")
    write_png(ref / "9.png", np.zeros((8, 8, 3), np.uint8))
    r = invoke("score", "--metrics", "mean", "--ref", ref, pred)
    assert r.exit_code == 1, r.output
    rows = {line.split()[1]: line for line in r.output.splitlines() if line.startswith("│")}
    assert "error" in rows["9"]
    assert all("error" not in rows[k] for k in ("0", "1", "2")), r.output


def test_score_prediction_without_reference_fails_that_file_only(env, tmp_path):
    pred, ref = _folders(tmp_path)
    write_png(pred / "extra.png", np.zeros((8, 8, 3), np.uint8))
    out = tmp_path / "s.csv"
    r = invoke("score", "--metrics", "mean", "--ref", ref, "-o", out, pred)
    assert r.exit_code == 1, r.output
    assert "prediction extra.png has no reference" in r.output
    assert "low-light" not in r.output
    df = pd.read_csv(out)
    assert df["image"].astype(str).tolist() == ["0", "1", "2", "extra"]
    assert df["error"].isna().tolist() == [True, True, True, False]
    assert df["mean"].round(4).tolist()[:3] == [0.0, round(50 / 255, 4), round(100 / 255, 4)]


def test_score_strip_suffix_pairs_suffixed_predictions(env, tmp_path):
    pred, ref = _folders(tmp_path, pred_suffix="_lime")
    r = invoke("score", "--metrics", "mean", "--ref", ref, pred)
    assert r.exit_code == 1 and "--strip-suffix" in r.output  # the hint
    out = tmp_path / "s.csv"
    r = invoke(
        "score", "--metrics", "mean", "--ref", ref, "--strip-suffix", "_lime", "-o", out, pred
    )
    assert r.exit_code == 0, r.output
    assert pd.read_csv(out)["image"].astype(str).tolist() == ["0", "1", "2"]


# -- defect 4: method outputs and report notes ---------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("uint8", r"_Returns returned a torch.uint8 tensor \(values \d+\.\.\d+\)"),
        ("over", r"\[1\.5, 1\.5\]"),
    ],
)
def test_checked_enhance_refuses_bad_ranges(kind, expected):
    meth = _Returns({"kind": kind}, torch.device("cpu"))
    with pytest.raises(MethodOutputError, match=expected):
        checked_enhance(meth, torch.rand(1, 3, 4, 4))


def test_checked_enhance_accepts_rounding_noise():
    meth = _Returns({"kind": "slightly"}, torch.device("cpu"))
    out = checked_enhance(meth, torch.full((1, 3, 4, 4), 0.5))
    assert out.dtype == torch.float32


def test_run_with_uint8_method_is_a_recorded_failure(env):
    r = invoke("run", "--method", "returns-uint8", "--dataset", "tiny", "--metrics", "mean")
    assert r.exit_code == 1, r.output
    assert "uint8" in r.output and "_Returns" in r.output
    r = invoke("report")  # every image failed: no scores, but a note says why it is missing
    assert "returns-uint8 on tiny: all 4 image(s) failed" in r.output


def test_report_notes_distinguish_failed_images_from_failed_metrics(env):
    assert (
        invoke(
            "run", "--method", "returns-odd-img2", "--dataset", "tiny", "--metrics", "mean"
        ).exit_code
        == 1
    )
    # niqe needs 96 x 96 pixels: it fails on every (24 x 32) image while `mean` scores them
    r = invoke("run", "--method", "brighten", "--dataset", "tiny", "--metrics", "mean,niqe")
    assert r.exit_code == 1 and "niqe" in r.output
    r = invoke("report")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "brighten on tiny: a metric failed on 4 image(s)" in text
    assert "brighten on tiny: 4 of 4 image(s) failed" not in text
    assert "returns-odd-img2 on tiny: 1 of 4 image(s) failed and are excluded" in text
    assert "returns-odd-img2 on tiny: a metric failed" not in text


def test_failure_notes_from_the_frame_alone_do_not_overclaim():
    frame = pd.DataFrame(
        {"method": ["m"], "dataset": ["d"], "metric": ["psnr"], "value": [1.0], "n_failed": [2]}
    )
    notes = failure_notes(frame)
    assert notes and "failed and are excluded from the means" not in notes[0]
    assert build_table(frame.assign(run_key="k"), {"psnr": True}).notes == notes


# -- defect 5: config types ----------------------------------------------------------------------
def test_config_types_are_checked_against_the_defaults():
    base = {"lr": 1e-4, "steps": 10, "name": "x", "flag": True, "opt": None, "sizes": [1, 2]}
    assert merge(base, {"lr": 1})["lr"] == 1  # an int is a fine float
    assert merge(base, {"opt": "anything"})["opt"] == "anything"
    for key, bad in (
        ("lr", "fast"),
        ("steps", 2.5),
        ("steps", True),
        ("flag", 1),
        ("name", 3),
        ("sizes", "1,2"),
        ("lr", None),
    ):
        with pytest.raises(ConfigError, match=f"config key '{key}' must be"):
            merge(base, {key: bad})
    with pytest.raises(ConfigError, match="'train' must be a table"):
        merge({"train": {"lr": 1.0}}, {"train": 3})


def test_unknown_keys_suggest_close_matches():
    with pytest.raises(ConfigError, match=r"'train\.epoch'; did you mean 'train\.epochs'\?"):
        merge({"train": {"epochs": 1, "batch": 2}}, {"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="'lr' must be a number"):
        effective_config({"lr": 0.1}, {}, None, {"lr": "fast"})


def test_wrong_config_type_stops_run_before_any_work(env, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text('lr: "fast"\n')
    r = invoke("run", "--method", "scale", "--dataset", "tiny", "--config", cfg)
    assert r.exit_code == 2 and "'lr' must be a number" in r.output
    assert "Traceback" not in r.output
    assert not list((env / "train").glob("*")) if (env / "train").exists() else True


# -- defect 7: brackets in messages --------------------------------------------------------------
def test_bracketed_config_section_survives_the_cli(env, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[uss]\nweight = 1\n")
    r = invoke("run", "--method", "brighten", "--dataset", "tiny", "--config", cfg)
    assert r.exit_code == 2
    assert "unknown config key 'uss'" in r.output


def test_bracketed_file_names_and_extras_are_printed_verbatim(env, tmp_path):
    pred, ref = tmp_path / "p[1]", tmp_path / "r"
    write_png(pred / "a[video].png", np.zeros((8, 8, 3), np.uint8))
    ref.mkdir()
    write_png(ref / "b.png", np.zeros((8, 8, 3), np.uint8))
    r = invoke("score", "--metrics", "mean", "--ref", ref, pred)
    assert r.exit_code == 1
    assert "a[video].png" in r.output and "a[video]" in r.output.replace("\n", "")


def test_fail_prints_markup_literally(capsys):
    from llbench.cli.common import fail

    with pytest.raises(SystemExit):
        fail("install it with pip install 'llbench[video]' and see [bold]this[/]")
    err = capsys.readouterr().err
    assert "'llbench[video]'" in err and "[bold]this[/]" in err
