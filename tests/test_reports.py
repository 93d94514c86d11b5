"""Paper-style tables: run identity, reference rows, formatting, statistics, published numbers.

Each observed problem of issue 14 is a test here: rows are run identities (not the latest run per
method), limited runs are left out, the dark input is never ranked, decimals are fixed per
column, Markdown goes wherever --format md goes, --force keeps scores, published numbers and
paper layouts, provenance commands.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from plugin_fixtures import run_tiny, tiny_host

import llbench
from llbench.api.specs import MethodSpec, PublishedValue
from llbench.cli.main import cli
from llbench.pluginhost.host import get_host
from llbench.reports import figures
from llbench.reports.report import build_report
from llbench.reports.tables import build_table, format_value
from llbench.store.database import Store


@pytest.fixture
def host(home, monkeypatch):
    return tiny_host(home, monkeypatch, "core-metrics,input")


_run = run_tiny


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def fake_run(store, key, method, dataset, values, *, seed=0, metric="psnr", prov=None, **fields):
    """A finished run with per-image ``values`` of ``metric`` (no files)."""
    prov = {"seed": seed, "limit": None, "preset": None, **(prov or {})}
    store.start_run(
        key,
        method=method,
        dataset=dataset,
        split="test",
        n_images=len(values),
        seed=seed,
        config=fields.pop("config", {}),
        provenance=prov,
        **fields,
    )
    for i, v in enumerate(values):
        store.record_item(key, f"img{i}", "ok", {metric: float(v)})
    store.finish_run(key, "finished")


# -- legacy long-frame tables ----------------------------------------------------------------------
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
    assert t.ranks[("a", ("lime_set", "niqe"))] == t.ranks[("b", ("lime_set", "niqe"))] == 1
    assert t.ranks[("c", ("lime_set", "niqe"))] == 2


def test_markdown_latex_html_csv_use_display_names_and_fixed_decimals():
    t = build_table(_frame(), {"psnr": True, "niqe": False}, metric_order=["psnr", "niqe"])
    md = t.to_markdown()
    assert "LOL PSNR\u2191" in md and "LOL NIQE\u2193" in md  # display names, arrows
    assert "**22.50**" in md and "<u>20.00</u>" in md and "18.00" in md
    assert "| **3.500** |" in md and "| 5.000 |" in md  # NIQE: 3 decimals in every row
    tex = t.to_latex(caption="Results on LOL", label="tab:lol")
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\cmidrule(lr){3-4}" in tex
    assert "\\multicolumn{2}{c}{LOL}" in tex and "lime\\_set" in tex
    assert "\\textbf{22.50}" in tex and "\\underline{20.00}" in tex and "$\\downarrow$" in tex
    html = t.to_html()
    assert '<th colspan="2">LOL</th>' in html and "<b>22.50</b>" in html
    csv = t.to_csv().splitlines()
    assert csv[0] == "method,lime_set/niqe,lol/psnr,lol/niqe"
    assert csv[2].startswith("b,4.2,22.5,5.0")


def test_html_escapes_names():
    f = _frame()
    f.loc[f["method"] == "a", "method"] = "<script>"
    assert "<script>" not in build_table(f, {}).to_html()


@pytest.mark.parametrize(
    "v,s",
    [(22.456, "22.46"), (0.8123, "0.812"), (123.45, "123.5"), (0.001234, "1.23e-03")],
)
def test_format_value(v, s):
    assert format_value(v) == s


# -- run identity ----------------------------------------------------------------------------------
def test_rows_are_run_identities_not_the_latest_run(host, home):
    """Observed: a config variant replaced the default row; three seeds showed as one number;
    a synthetic-trained run and an official-weights run were one row."""
    plain = _run(host, home)
    variant = _run(host, home, config={"gamma": 0.7})
    seeds = [_run(host, home, method="scale", seed=s) for s in (0, 1, 2)]
    quick = _run(host, home, method="scale", preset="quick")
    rep = build_report(home=home, host=host)
    labels = rep.table.methods
    assert "brighten" in labels and "brighten (gamma=0.7)" in labels
    assert "scale (Tiny, seeds 0-2)" not in labels  # dataset display name unknown: id kept
    scale_rows = [r for r in rep.rows if r.method == "scale"]
    assert {r.label for r in scale_rows} == {"scale (tiny, seeds 0-2)", "scale (tiny, quick)"}
    col = ("tiny", "mean")
    assert rep.table.value("brighten", col) == pytest.approx(plain.scores["mean"])
    assert rep.table.value("brighten (gamma=0.7)", col) == pytest.approx(variant.scores["mean"])
    seeded = next(r for r in scale_rows if "seeds" in r.label).cells[col]
    means = [s.scores["mean"] for s in seeds]
    assert seeded.value == pytest.approx(np.mean(means)) and seeded.n_seeds == 3
    assert seeded.std == pytest.approx(np.std(means, ddof=1))
    assert "\u00b1" in rep.table.cell("scale (tiny, seeds 0-2)", col)
    assert rep.table.value("scale (tiny, quick)", col) == pytest.approx(quick.scores["mean"])
    assert "quick preset" in rep.table.caption


def test_official_and_trained_weights_are_different_rows(home):
    store = Store(home)
    cache = home / "cache" / "weights" / "zero-dce++"
    fake_run(
        store,
        "off",
        "zero-dce++",
        "lol",
        [20, 21, 22],
        weights=str(cache / "Epoch99.pth"),
        weights_hash="aa",
    )
    for seed in (0, 1, 2):
        fake_run(
            store,
            f"tr{seed}",
            "zero-dce++",
            "lol",
            [14 + seed, 15, 16],
            seed=seed,
            prov={"training": {"dataset": "sice", "train_manifest": "m", "key": f"t{seed}"}},
            weights=f"/w/{seed}.pt",
            weights_hash=f"h{seed}",
        )
    rep = build_report(home=home)
    assert rep.table.methods == ["Zero-DCE++ (official)", "Zero-DCE++ (SICE, seeds 0-2)"]
    assert rep.table.value("Zero-DCE++ (official)", ("lol", "psnr")) == pytest.approx(21)
    assert rep.table.value("Zero-DCE++ (SICE, seeds 0-2)", ("lol", "psnr")) == pytest.approx(46 / 3)


def test_runs_option_picks_exactly_those_runs(host, home):
    a = _run(host, home)
    _run(host, home, config={"gamma": 0.7})
    rep = build_report(home=home, host=host, runs=[a.key[:8]])
    assert rep.table.methods == ["brighten"]
    r = invoke("report", "--runs", a.key[:8])
    assert r.exit_code == 0 and "gamma" not in r.output
    r = CliRunner().invoke(cli, ["report", "--runs", "zzzz"])
    assert r.exit_code == 2 and "no stored run" in r.output


def test_limited_runs_are_left_out_unless_asked(host, home):
    """Observed: a --limit 3 run entered the table unmarked (3 of 64 images)."""
    _run(host, home, method="scale")
    _run(host, home, limit=2)
    rep = build_report(home=home, host=host)
    assert [r.method for r in rep.rows] == ["scale"]
    assert any("--include-limited" in n for n in rep.table.notes)
    rep = build_report(home=home, host=host, include_limited=True)
    assert "brighten (2 of 4 images)" in rep.table.methods
    assert "first images only" in rep.table.caption
    r = invoke("report", "--include-limited")
    assert "brighten (2 of 4 images)" in r.output


def test_reference_rows_first_and_never_ranked(home):
    """Observed: the input row was bolded as best for NIQE and LOE."""
    store = Store(home)
    fake_run(store, "in", "input", "lol", [3.0, 3.1, 3.2], metric="niqe")
    fake_run(store, "m1", "lime", "lol", [5.0, 5.2, 5.1], metric="niqe")
    fake_run(store, "m2", "he", "lol", [6.0, 6.2, 6.1], metric="niqe")
    store.record_reference("r-gt", "reference", {"miou": 70.0}, dataset="lol", split="test")
    store.record_reference("r-in", "input", {"miou": 40.0}, dataset="lol", split="test")
    t = build_report(home=home).table
    assert t.methods == ["(dark input)", "(normal light)", "HE", "LIME"]
    col = ("lol", "niqe")
    assert t.value("(dark input)", col) == pytest.approx(3.1)  # input method and record merge
    assert t.value("(dark input)", ("lol", "miou")) == pytest.approx(40.0)
    assert ("(dark input)", col) not in t.ranks and t.ranks[("LIME", col)] == 1
    assert ("(normal light)", ("lol", "miou")) not in t.ranks
    assert "\\midrule\nHE" in t.to_latex()  # a rule between the references and the methods


def test_row_order_is_stable_and_documented(home):
    """Observed: row order changed between calls."""
    store = Store(home)
    for key, method in (("k1", "zero-dce"), ("k2", "clahe"), ("k3", "lime"), ("k4", "he")):
        fake_run(store, key, method, "lol", [10, 11])
    orders = {tuple(build_report(home=home).table.methods) for _ in range(3)}
    assert orders == {("CLAHE", "HE", "LIME", "Zero-DCE")}
    given = build_report(home=home, methods=["lime", "he"]).table.methods
    assert given == ["LIME", "HE"]


def test_decimals_are_fixed_per_column(home):
    """Observed: 9.630 / 16.71 in one PSNR column."""
    store = Store(home)
    fake_run(store, "a", "he", "lol", [9.63, 9.63])
    fake_run(store, "b", "lime", "lol", [16.71, 16.71])
    fake_run(store, "c", "clahe", "lol", [0.5, 0.5], metric="weird")
    fake_run(store, "d", "gamma", "lol", [123.0, 123.0], metric="weird")
    t = build_report(home=home).table
    assert t.cell("HE", ("lol", "psnr")) == "9.63" and t.cell("LIME", ("lol", "psnr")) == "16.71"
    # a metric without a fixed number: three significant digits for the smallest value
    assert t.cell("CLAHE", ("lol", "weird")) == "0.500"
    assert t.cell("Gamma", ("lol", "weird")) == "123.000"


def test_caption_states_counts_units_and_arrows(host, home):
    _run(host, home)
    cap = build_report(home=home, host=host).table.caption
    assert "images: tiny 4" in cap and "\u2191 higher is better (mean)" in cap


def test_markdown_wherever_it_goes_and_piped_output_is_not_cut(host, home, tmp_path):
    """Observed: `report --format md > t.md` wrote box-drawing characters; piped output was
    cut to 80 columns."""
    _run(host, home, config={"gamma": 0.123456789})
    for args in (["report", "--format", "md"], ["report"]):
        r = invoke(*args)
        assert r.exit_code == 0
        assert "| Method |" in r.output and "\u2503" not in r.output and "\u2501" not in r.output
        assert "brighten (gamma=0.123457)" in r.output  # the whole label, not cut
    out = tmp_path / "t.md"
    invoke("report", "--format", "md", "-o", str(out))
    assert out.read_text().startswith("| Method |")


def test_names_match_case_insensitively(host, home):
    _run(host, home)
    r = invoke("report", "--method", "BRIGHTEN", "--dataset", "Tiny", "--format", "csv")
    assert r.exit_code == 0 and "brighten" in r.output
    short = invoke("report", "-m", "BRIGHTEN", "-d", "Tiny", "--format", "csv")  # as in `run`
    assert short.exit_code == 0 and short.output == r.output
    frame = llbench.results(["Brighten"], ["TINY"], home=home)
    assert list(frame["method"]) == ["brighten"]


# -- statistics in tables --------------------------------------------------------------------------
def test_baseline_marks_significant_differences(home):
    store = Store(home)
    rng = np.random.default_rng(0)
    base = 20 + rng.normal(0, 1, 30)
    fake_run(store, "b", "he", "lol", base)
    fake_run(store, "same", "lime", "lol", base)  # identical: never significant
    fake_run(store, "up", "clahe", "lol", base + 1 + rng.normal(0, 0.2, 30))
    fake_run(store, "down", "gamma", "lol", base - 1 + rng.normal(0, 0.2, 30))
    rep = build_report(home=home, baseline="he")
    t, col = rep.table, ("lol", "psnr")
    assert t.mark("LIME", col) is None and t.cells[("LIME", col)].paired.p == 1.0
    assert t.mark("CLAHE", col) == "better" and t.mark("Gamma", col) == "worse"
    assert t.mark("HE", col) is None
    assert "\u25b2" in t.to_markdown() and "$^{\\blacktriangle}$" in t.to_latex()
    assert 'class="sig"' in t.to_html_table()
    lo, hi = t.cells[("HE", col)].ci
    assert lo < t.value("HE", col) < hi
    assert "Wilcoxon" in t.caption and "HE" in t.caption
    with pytest.raises(llbench.errors.ConfigError, match="matches no row"):
        build_report(home=home, baseline="nope")


def test_intervals_can_be_switched_off(home):
    store = Store(home)
    fake_run(store, "a", "he", "lol", [10, 12, 14])
    md_on = build_report(home=home).table.to_markdown()
    md_off = build_report(home=home, intervals=False).table.to_markdown()
    assert "12.00 [" in md_on and "12.00 [" not in md_off


# -- published numbers and paper layouts -----------------------------------------------------------
def test_a_plugin_ships_published_numbers_through_the_spec(home, monkeypatch):
    monkeypatch.setenv("LLBENCH_PLUGINS", "core-metrics")

    class Pub:
        @llbench.api.hookimpl
        def register_methods(register):
            register(
                MethodSpec(
                    "mymethod",
                    lambda c, d: None,
                    "s",
                    paper="Me et al. 2024",
                    published=[PublishedValue("lol", "psnr", 21.5, table="Table 2")],
                )
            )

    h = get_host()
    h.register(Pub, "pub")
    fake_run(Store(home), "k", "mymethod", "lol", [20.0, 21.0])
    rep = build_report(home=home, host=h, published=True)
    assert rep.table.methods == ["mymethod", "mymethod [published, Me et al. 2024 Table 2]"]
    prow = rep.table.methods[1]
    assert rep.table.value(prow, ("lol", "psnr")) == 21.5
    assert rep.table.diffs[(prow, ("lol", "psnr"))] == pytest.approx(-1.0)
    assert "(\u0394 -1.00)" in rep.table.to_markdown()
    assert (prow, ("lol", "psnr")) not in rep.table.ranks


def test_published_toml_beside_the_plugin_is_found(tmp_path, home, monkeypatch):
    import sys

    pkg = tmp_path / "pubplug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from llbench.api import MethodSpec, hookimpl\n"
        "def build(c, d):\n    return None\n"
        "@hookimpl\ndef register_methods(register):\n"
        "    register(MethodSpec('pp', build, 's'))\n"
    )
    (pkg / "published.toml").write_text(
        'paper = "PP (2024)"\n[[tables]]\nid = "table1"\nname = "Table 1"\n'
        'columns = ["lol/psnr", "lol/ssim"]\n'
        'rows = [["PP", "pp", 20.5, nan], ["Other", "other", 19.0, 0.7]]\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LLBENCH_PLUGINS", "core-metrics")
    import importlib

    mod = importlib.import_module("pubplug")
    h = get_host()
    h.register(mod, "pubplug")
    from llbench.reports.published import load_published

    pub = load_published(h)
    assert [(v.method, v.metric, v.value) for v in pub.values] == [
        ("pp", "psnr", 20.5),
        ("other", "psnr", 19.0),
        ("other", "ssim", 0.7),
    ]
    assert pub.table("PUBPLUG-TABLE1").rows == [("PP", "pp"), ("Other", "other")]
    sys.modules.pop("pubplug", None)


def test_seed_papers_published_numbers_match_the_papers():
    """Spot checks of the five seed papers' tables (values read from ../shared/papers)."""
    from llbench.reports.published import load_published

    pub = load_published(get_host())
    assert {
        "skf-table1",
        "skf-table2",
        "sgz-table5",
        "sgz-table6",
        "sgz-table7",
        "sgz-table8",
        "hillie-table1",
        "mcmt-table1",
        "sllen-table3",
    } <= set(pub.tables)

    def one(method, dataset, metric, paper):
        found = [v for v in pub.lookup(method, dataset, metric) if v.paper.startswith(paper)]
        return found[0].value

    assert one("kind", "lol", "psnr", "SKF") == 20.870
    assert one("drbn-skf", "lolv2-real", "ssim_skimage", "SKF") == 0.871
    assert one("retinexnet", "lol", "niqe", "SKF") == 8.873  # Table 1 before Table 2
    assert one("sgz", "lol", "psnr_sgz", "SGZ") == 20.60
    assert one("sgz", "darkcityscape", "miou", "SGZ") == 65.87
    assert one("hillie", "lol", "musiq", "HiLLIE") == 64.229
    assert one("zero-dce++", "dicm", "niqe", "HiLLIE") == 3.427
    assert one("crnet", "lol", "psnr", "MCMT") == 24.01
    assert one("sllen", "mef", "loe", "SLLEN") == 195
    t = pub.table("skf-table1")
    assert t.columns[:4] == [
        ("lol", "psnr"),
        ("lol", "ssim_skimage"),
        ("lol", "lpips"),
        ("lol", "niqe"),
    ]
    assert t.rows[0] == ("LIME", "lime") and t.rows[-1] == ("LLFlow-L-SKF", "llflow-l-skf")
    # SGZ's REF.py protocol is reproduced exactly (psnr_sgz); its UNIQUE column only approximately
    assert not pub.lookup("sgz", "lol", "psnr_sgz", table="Table 6")[0].approximate
    assert pub.lookup("sgz", "npe", "unique", table="Table 5")[0].approximate


def test_preset_rebuilds_a_paper_table_with_published_rows(home):
    from llbench.reports.paper import build_paper_table

    store = Store(home)
    fake_run(store, "k", "kind", "lol", [20.0, 20.5, 21.0])
    fake_run(store, "i", "input", "lol", [7.0, 7.5, 8.0])
    rep = build_paper_table("skf-table1", home=home)
    t = rep.table
    assert t.methods[0] == "(dark input)"
    i = t.methods.index("KinD")
    assert t.methods[i + 1] == "KinD [published]"
    assert t.methods[1] == "LIME [published]"  # not measured: the printed values
    col = ("lol", "psnr")
    assert t.value("KinD", col) == pytest.approx(20.5)
    assert t.value("KinD [published]", col) == 20.870
    assert t.diffs[("KinD [published]", col)] == pytest.approx(20.5 - 20.870)
    assert t.columns == build_paper_table("skf-table1", home=home).table.columns
    assert t.columns[-1] == ("lol", "params")
    assert "SKF" in t.caption and "Table 1" in t.caption
    r = invoke("report", "--preset", "skf-table1", "--format", "md")
    assert r.exit_code == 0 and "KinD [published]" in r.output
    r = CliRunner().invoke(cli, ["report", "--preset", "nope-table9"])
    assert r.exit_code == 2 and "skf-table1" in r.output


# -- --force, provenance, verify -------------------------------------------------------------------
def test_force_never_deletes_scores_it_did_not_recompute(host, home):
    """Observed: `run --force --metrics psnr,ssim` deleted the stored NIQE and LOE."""
    first = _run(host, home, metrics=["mean", "peak"])
    store = Store(home)
    store.record_scores(first.key, "img0", {"ghost": 1.5})  # a metric that cannot run here
    store.record_scores(first.key, "*", {"ghost_split": 2.5})
    before = {(r["image"], r["metric"]): r["value"] for r in store.score_rows(first.key)}
    forced = _run(host, home, metrics=["mean"], force=True)
    assert not forced.reused and forced.key == first.key
    after = {(r["image"], r["metric"]): r["value"] for r in store.score_rows(first.key)}
    assert set(after) == set(before)  # peak recomputed, ghost kept (same output)
    assert after[("img1", "peak")] == pytest.approx(before[("img1", "peak")])
    assert after[("img0", "ghost")] == 1.5 and after[("*", "ghost_split")] == 2.5


def test_runs_show_and_list_columns(host, home):
    trained = _run(host, home, method="scale", preset="quick", seed=3)
    _run(host, home, limit=2)
    r = invoke("runs")
    assert r.exit_code == 0
    for text in ("seed", "preset", "limit", "weights", "trained on tiny", "quick"):
        assert text in r.output
    r = invoke("runs", "show", trained.key[:10])
    assert r.exit_code == 0, r.output
    for text in (trained.key, "quick", "trained on tiny", '"steps": 2', "seed", "3"):
        assert text in r.output
    info = json.loads(invoke("runs", "show", trained.key, "--json").output)
    assert info["seed"] == 3 and info["preset"] == "quick" and info["weights"]["kind"] == "trained"
    data = json.loads(invoke("runs", "--json").output)
    assert {"seed", "preset", "limit", "weights_kind"} <= set(data[0])


def test_runs_show_lists_failures(host, home):
    bad = _run(host, home, method="nan-method")
    r = invoke("runs", "show", bad.key)
    assert "img3" in r.output and "NaN" in r.output


def test_export_has_identity_columns(host, home, tmp_path):
    _run(host, home, limit=2, seed=4)
    invoke("export", "-o", str(tmp_path / "s.csv"))
    df = pd.read_csv(tmp_path / "s.csv")
    assert {"seed", "preset", "limit", "weights_kind"} <= set(df.columns)
    assert set(df["limit"]) == {2} and set(df["seed"]) == {4}


def test_methods_name_prints_default_config_and_presets(host):
    r = invoke("methods", "SCALE")
    assert r.exit_code == 0, r.output
    assert "default config" in r.output and "lr = 0.5" in r.output
    assert "preset quick" in r.output and "steps = 2" in r.output
    info = json.loads(invoke("methods", "scale", "--json").output)
    assert info["presets"] == {"quick": {"steps": 2}}


def test_verify_recomputes_a_run(host, home):
    res = _run(host, home, metrics=["mean", "peak"])
    r = invoke("verify", res.key[:8])
    assert r.exit_code == 0, r.output
    assert "largest difference 0 8-bit level" in r.output and "0 image(s) differ" in r.output
    assert "mean: largest difference" in r.output  # float32 noise at most (tolerance 1e-6)
    from llbench.io.images import read_image, write_png

    out = res.out_dir / "images" / "img2.png"
    img = read_image(out)
    img[0, 0] = 255 - img[0, 0]
    write_png(out, img)
    Store(home).record_scores(res.key, "img2", {"mean": 0.9})
    r = CliRunner().invoke(cli, ["verify", res.key])
    assert r.exit_code == 1 and "(img2)" in r.output


def test_plugin_source_changes_change_the_run_key(tmp_path, monkeypatch):
    """Stale results: changed plugin code never reuses old outputs."""
    import importlib
    import os
    import sys

    from llbench.engine.plan import plugin_source_hash

    pkg = tmp_path / "srcplug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("def build(c, d):\n    return None\n")
    (pkg / "model.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("srcplug")
    spec = MethodSpec("srcplug", mod.build, "s")
    h1 = plugin_source_hash(spec)
    assert h1 == plugin_source_hash(spec)
    (pkg / "published.toml").write_text("paper = 'x'\n")  # data files do not count
    assert plugin_source_hash(spec) == h1
    (pkg / "model.py").write_text("X = 2\n")
    st = (pkg / "model.py").stat()
    os.utime(pkg / "model.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert plugin_source_hash(spec) != h1
    sys.modules.pop("srcplug", None)


def test_changed_source_gives_a_new_run(host, home, monkeypatch):
    first = _run(host, home)
    import llbench.engine.plan as plan_mod

    monkeypatch.setattr(plan_mod, "plugin_source_hash", lambda spec, host=None: "changed")
    second = _run(host, home)
    assert second.key != first.key and not second.reused


# -- user studies ------------------------------------------------------------------------------------
def answered_study(home, name, participants, methods=("he", "lime", "sgz")):
    """A pairwise study over three stored runs, answered by ``participants`` (who prefer the
    later method of each pair, except the last participant, who answers the other way)."""
    from PIL import Image

    from llbench.study import StudyStore, create_study_from_runs

    store = Store(home)
    for i, m in enumerate(methods):
        key = f"{m}-run"
        out = f"runs/{m}/lolv2/{key}"
        store.start_run(key, method=m, dataset="lolv2", split="test", out_dir=out)
        for img in ("im1", "im2"):
            (home / out).mkdir(parents=True, exist_ok=True)
            arr = np.full((16, 16, 3), 40 + 80 * i, np.uint8)
            Image.fromarray(arr).save(home / out / f"{img}.png")
            sha = hashlib.sha256((home / out / f"{img}.png").read_bytes()).hexdigest()
            store.record_item(key, img, "ok", output=f"{out}/{img}.png", sha256=sha)
        store.finish_run(key, "finished")
    create_study_from_runs(home, name, list(methods), "lolv2", seed=1)
    sstore = StudyStore(home)
    order = {m: i for i, m in enumerate(methods)}
    for k, who in enumerate(participants):
        sstore.start_participant(name, who)
        for item in sstore.items(name):
            sstore.record_presentation(name, who, item.item, False)
            pick = max((item.cond_a, item.cond_b), key=lambda c: order.get(c, 0))
            if k == len(participants) - 1:
                pick = item.cond_a if pick == item.cond_b else item.cond_b
            sstore.record_answer(name, who, item, swapped=False, chosen=pick)


def test_study_scores_are_stored_with_exclude_and_read_by_report(home, monkeypatch):
    """Observed: `report` re-ran the bootstraps on every call and ignored --exclude."""
    answered_study(home, "s1", participants=("alice", "bob", "carol"))
    monkeypatch.setenv("LLBENCH_PLUGINS", "core-metrics")
    r = invoke("study", "score", "s1", "--exclude", "bob", "--bootstrap", "50")
    assert r.exit_code == 0, r.output
    rows = Store(home).study_scores("s1")
    assert rows and json.loads(rows[0]["settings"])["exclude"] == ["bob"]
    assert rows[0]["observers"] == 2
    import llbench.study.analysis as analysis

    def boom(*a, **k):
        raise AssertionError("report must not rescale a scored study")

    monkeypatch.setattr(analysis, "score_study", boom)
    fake_run(Store(home), "k", "he", "lol", [1.0, 2.0])
    r = invoke("report", "--format", "md")
    assert r.exit_code == 0 and "s1 JOD" in r.output and '"exclude": ["bob"]' in r.output
    r = invoke("report", "--format", "latex")
    assert "\\begin{tabular}" in r.output and r.output.count("\\begin{table}") == 2


# -- figures ---------------------------------------------------------------------------------------
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
    out = figures.training_curves(log, tmp_path / "t.svg", smooth=3, labels={"k": "m (run A)"})
    assert "m (run A)" in out.read_text()
    with pytest.raises(ValueError, match="must end in"):
        figures.metric_bars(_frame(), "psnr", tmp_path / "x.gif")


def test_bars_show_intervals_and_grids_show_truth_and_scores(host, home, tmp_path):
    _run(host, home, metrics=["mean"])
    _run(host, home, metrics=["mean"], config={"gamma": 0.8})
    rep = build_report(home=home, host=host)
    svg = figures.metric_bars(rep.frame, "mean", tmp_path / "m.svg", higher_better=True)
    assert "bootstrap interval" in svg.read_text()
    from llbench.reports.report import report_figures

    written = report_figures(
        rep.frame,
        tmp_path / "figs",
        home=home,
        fmt="svg",
        host=host,
        images=["img2", "img0"],
        crop=(2, 2, 8, 8),
    )
    names = {p.name for p in written}
    assert {"mean.svg", "grid-tiny.svg", "grid-tiny-crop.svg"} <= names
    grid = (tmp_path / "figs" / "grid-tiny.svg").read_text()
    for text in ("Ground truth", "Input", "img2", "img0", "brighten (gamma=0.8)"):
        assert text in grid
    assert "img1" not in grid
    from llbench.reports.gallery import collect_gallery

    g = collect_gallery(rep.frame, home=home, images=["img2"])[0]
    assert g.images == ["img2"] and g.references and g.inputs
    assert math.isfinite(g.scores["brighten"]["img2"]["mean"])


def test_training_curves_are_labelled_by_run(host, home, tmp_path):
    for s in (0, 1):
        _run(host, home, method="scale", seed=s)
    rep = build_report(home=home, host=host)
    from llbench.reports.report import report_figures

    written = report_figures(rep.frame, tmp_path, home=home, fmt="svg", host=host, rows=rep.rows)
    svg = next(p for p in written if p.name == "training.svg").read_text()
    assert "scale (tiny, seeds 0-1), seed 0" in svg and "scale (tiny, seeds 0-1), seed 1" in svg


def test_training_figure_draws_monitored_values_apart_from_the_loss_terms():
    import matplotlib.pyplot as plt

    steps = list(range(10))
    rows = []
    for name, values in (
        ("semi/loss", [0.5 - 0.01 * i for i in steps]),
        ("semi/enhance", [0.3] * 10),
        ("lle/ssim", [0.2] * 10),  # a loss term named after a metric (KinD, DRBN): stays a loss
        ("semi/psnr_student", [20 + 0.1 * i for i in steps]),
    ):
        rows += [
            {"method": "m", "dataset": "d", "train_key": k, "step": i, "name": name, "value": v}
            for k in ("k1", "k2")
            for i, v in zip(steps, values, strict=True)
        ]
    log = pd.DataFrame(rows)
    fig = figures.training_figure(log, labels={"k1": "run 1", "k2": "run 2"})
    axes = fig.axes
    assert len(axes) == 4  # 2 rows (loss terms, monitored values) x 2 runs
    top = {t.get_text() for t in axes[0].get_legend().get_texts()}
    bottom = {t.get_text() for t in axes[2].get_legend().get_texts()}
    assert top == {"semi/loss", "semi/enhance", "lle/ssim"} and bottom == {"semi/psnr_student"}
    assert axes[0].get_ylabel() == "loss" and axes[2].get_ylabel() == "monitored value"
    assert axes[0].get_ylim()[1] < 1 < axes[2].get_ylim()[0]  # neither squashes the other
    plt.close(fig)
    only_losses = log[log["name"] != "semi/psnr_student"]
    fig = figures.training_figure(only_losses)
    assert len(fig.axes) == 2  # one row when nothing is monitored
    plt.close(fig)
    assert figures.is_monitored("ss/miou") and not figures.is_monitored("drbn/ssim1")
