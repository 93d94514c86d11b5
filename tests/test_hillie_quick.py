"""HiLLIE end to end: the quick preset runs all five stages with simulated annotators on
synthetic-unpaired; the CLI reports the stages, draws the figures and exports the ranker, which
then scores another method's outputs as the ``hillie-ranker`` metric."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow


def test_quick_run_five_stages_figures_and_ranker_metric(home):
    import llbench
    from llbench.cli.main import cli
    from llbench.store.database import Store

    result = llbench.run("hillie", "synthetic-unpaired", preset="quick", home=home, progress=False)
    assert result.status == "finished" and result.n_images == 9
    assert "niqe" in result.scores
    prov = json.loads(Store(home).get_run(result.key)["provenance"])
    training = prov["training"]["method_provenance"]
    assert training["annotator"] == "simulated" and not training["leaks_supervision"]
    assert training["content_loss"]["if_missing"] == "random"
    stages = training["training"]["stages"]
    assert [s["stage"] for s in stages] == [0, 1, 2, 3, 4] and all(s["done"] for s in stages)
    assert [s.get("labels") for s in stages] == [None, 8, 8, 8, 8]
    assert all(0.5 < s["agreement"] <= 1.0 for s in stages[1:])
    wd = home / "train" / prov["training"]["key"]
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["labels"] == 32 and len(summary["accuracy"]) == 5
    assert (home / "studies").exists() is False  # simulated: no study was created

    runner = CliRunner()
    out = runner.invoke(cli, ["--home", str(home), "hillie", "status", "--run", result.key])
    assert out.exit_code == 0, out.output
    assert "HiLLIE training" in out.output
    out = runner.invoke(cli, ["--home", str(home), "hillie", "figures", "--run", result.key])
    assert out.exit_code == 0, out.output
    figs = wd / "figures"
    for name in ("fig3_scores.png", "fig5_accuracy.png", "table3.md", "fig10_stage1.png"):
        assert (figs / name).is_file(), name
    assert (figs / "table3.md").read_text().count("| g(") == 5
    # the same figures through `llbench report --figures` (the plugins' report_figures hook)
    out = runner.invoke(
        cli, ["--home", str(home), "report", "--method", "hillie", "--figures", str(home / "rf")]
    )
    assert out.exit_code == 0, out.output
    drawn = {p.name for p in (home / "rf").rglob("*") if p.parent.name.startswith("hillie-")}
    assert {"fig3_scores.png", "fig5_accuracy.png", "table3.md", "fig10_stage1.png"} <= drawn
    out = runner.invoke(cli, ["--home", str(home), "hillie", "export-ranker", "--run", result.key])
    assert out.exit_code == 0, out.output
    assert (home / "weights" / "hillie-ranker.pt").is_file()

    weights = prov["weights"]  # f(5) is a zero-dce++ state dict: the base loads it directly
    other = llbench.run(
        "zero-dce++",
        "synthetic-unpaired",
        weights=weights,
        metrics=["hillie-ranker", "niqe"],
        home=home,
        progress=False,
    )
    assert other.ok and set(other.scores) == {"hillie-ranker", "niqe"}
    assert other.scores["niqe"] == pytest.approx(result.scores["niqe"])
