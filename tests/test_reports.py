"""Paper-style tables and figures."""

from __future__ import annotations

import pandas as pd
import pytest

from llbench.reports import figures
from llbench.reports.tables import build_table, format_value


def _frame():
    rows = []
    for meth, psnr, niqe in (("a", 20.0, 4.0), ("b", 22.5, 5.0), ("c", 18.0, 3.5)):
        rows.append(("lol", "psnr", psnr, meth))
        rows.append(("lol", "niqe", niqe, meth))
    rows.append(("lime_set", "niqe", 4.2, "a"))
    rows.append(("lime_set", "niqe", 4.2, "b"))  # a tie for best
    rows.append(("lime_set", "niqe", 6.0, "c"))
    f = pd.DataFrame(rows, columns=["dataset", "metric", "value", "method"])
    f["n_failed"] = 0
    return f


def test_ranks_follow_metric_direction():
    t = build_table(_frame(), {"psnr": True, "niqe": False}, metric_order=["psnr", "niqe"])
    assert t.columns == [("lime_set", "niqe"), ("lol", "psnr"), ("lol", "niqe")]
    assert t.ranks[("b", ("lol", "psnr"))] == 1 and t.ranks[("a", ("lol", "psnr"))] == 2
    assert t.ranks[("c", ("lol", "niqe"))] == 1 and t.ranks[("a", ("lol", "niqe"))] == 2
    assert ("c", ("lol", "psnr")) not in t.ranks
    # ties share the rank
    assert t.ranks[("a", ("lime_set", "niqe"))] == t.ranks[("b", ("lime_set", "niqe"))] == 1
    assert t.ranks[("c", ("lime_set", "niqe"))] == 2


def test_markdown_latex_html_csv():
    t = build_table(_frame(), {"psnr": True, "niqe": False}, metric_order=["psnr", "niqe"])
    md = t.to_markdown()
    assert "lol psnr\u2191" in md and "lol niqe\u2193" in md
    assert "**22.50**" in md and "<u>20.00</u>" in md
    tex = t.to_latex(caption="Results on LOL", label="tab:lol")
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\cmidrule(lr){3-4}" in tex
    assert "\\multicolumn{2}{c}{lol}" in tex and "lime\\_set" in tex
    assert "\\textbf{22.50}" in tex and "\\underline{20.00}" in tex and "$\\downarrow$" in tex
    html = t.to_html()
    assert '<th colspan="2">lol</th>' in html and "<b>22.50</b>" in html and "<u>20.00</u>" in html
    csv = t.to_csv().splitlines()
    assert csv[0] == "method,lime_set/niqe,lol/psnr,lol/niqe" and csv[2].startswith(
        "b,4.2,22.5,5.0"
    )


def test_reference_rows_are_not_ranked():
    f = _frame()
    f = pd.concat(
        [f, pd.DataFrame([("lol", "psnr", 99.0, "(normal light)", 0)], columns=f.columns)],
        ignore_index=True,
    )
    t = build_table(f, {"psnr": True, "niqe": False})
    assert t.methods[0] == "(normal light)"
    assert ("(normal light)", ("lol", "psnr")) not in t.ranks
    assert t.ranks[("b", ("lol", "psnr"))] == 1


def test_notes_mention_failed_images():
    f = _frame()
    f.loc[f["method"] == "c", "n_failed"] = 2
    t = build_table(f, {"psnr": True, "niqe": False})
    assert any("c on lol: 2 image(s) failed" in n for n in t.notes)


def test_html_escapes_names():
    f = _frame()
    f.loc[f["method"] == "a", "method"] = "<script>"
    assert "<script>" not in build_table(f, {}).to_html()


@pytest.mark.parametrize(
    "v,s",
    [
        (22.456, "22.46"),
        (0.8123, "0.812"),
        (123.45, "123.5"),
        (0.001234, "1.23e-03"),
        (float("inf"), "inf"),
    ],
)
def test_format_value(v, s):
    assert format_value(v) == s


def test_figures_are_written(tmp_path):
    p = figures.metric_bars(_frame(), "psnr", tmp_path / "psnr.png", higher_better=True)
    assert p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG"
    s = figures.metric_bars(_frame(), "niqe", tmp_path / "niqe.svg")
    assert "<svg" in s.read_text()[:500]
    log = pd.DataFrame(
        {
            "method": "m",
            "dataset": "d",
            "train_key": "k",
            "step": range(20),
            "name": "loss",
            "value": [1 / (i + 1) for i in range(20)],
        }
    )
    assert figures.training_curves(log, tmp_path / "t.png", smooth=3).is_file()
    with pytest.raises(ValueError, match="must end in"):
        figures.metric_bars(_frame(), "psnr", tmp_path / "x.gif")
