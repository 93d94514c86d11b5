"""Benchmark grids: train once and evaluate everywhere, plans, executors (a real process pool with
killed workers and a killed driver), per-cell failures, claims, and the executor plugin kind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from plugin_fixtures import TinyPairs, make_tiny_dataset, tiny_host

import llbench
from llbench.api import DatasetSpec, ExecutorSpec, MethodSpec, hookimpl
from llbench.api.executors import Executor, Handle, parse_options
from llbench.engine.claims import BusyError
from llbench.engine.grid import plan_rows, run_grid
from llbench.errors import ConfigError
from llbench.pluginhost.host import reset_host
from llbench.store.database import Store


class GridPlugin:
    """A second paired dataset and a method whose build fails (to fail a whole cell)."""

    @hookimpl
    def register_datasets(register):
        register(
            DatasetSpec(
                "tiny2", lambda root: TinyPairs(Path(root) / "tiny2"), "more pairs", paired=True
            )
        )

    @hookimpl
    def register_methods(register):
        def broken(config, device):
            raise RuntimeError("this method cannot be built")

        register(MethodSpec("broken", broken, "fails to build"))


@pytest.fixture
def host(home, monkeypatch):
    h = tiny_host(home, monkeypatch, "core-metrics,executors")
    h.register(GridPlugin, "grid-tests")
    make_tiny_dataset(home / "data" / "tiny2", n_test=3)
    return h


def _grid(host, home, methods, datasets, seeds=(0,), **kw):
    kw.setdefault("metrics", ["mean"])
    return run_grid(methods, datasets, seeds, home=home, progress=False, host=host, **kw)


def test_train_once_evaluate_everywhere(host, home):
    plan = _grid(host, home, ["scale"], ["tiny", "tiny2"], train_dataset="tiny", dry_run=True)
    rows = plan_rows(plan)
    assert [r["status"] for r in rows] == ["needs training", "needs training"]
    assert rows[0]["training"] == rows[1]["training"] and "trains on 3" in rows[0]["training"]
    assert Store(home).query("SELECT COUNT(*) AS n FROM runs")[0]["n"] == 0  # nothing computed

    result = _grid(host, home, ["scale"], ["tiny", "tiny2"], train_dataset="tiny")
    assert result.ok, [c.error for c in result.cells]
    trainings = Store(home).query("SELECT key, dataset, status FROM trainings")
    assert [(t["dataset"], t["status"]) for t in trainings] == [("tiny", "finished")]
    weights = {c.weights.sha256 for c in result.cells}
    assert len(weights) == 1
    assert [c.result.n_images for c in result.cells] == [4, 3]
    steps = Store(home).query("SELECT COUNT(DISTINCT step) AS n FROM train_log")[0]["n"]
    assert steps == 6  # the training's losses came back from the worker and were recorded

    # the same cell through the single-run API is the same run (same key, reused)
    single = llbench.run(
        "scale", "tiny2", train_dataset="tiny", metrics=["mean"], home=home, progress=False,
        host=host,
    )  # fmt: skip
    assert single.reused and single.key == result.cells[1].key
    again = _grid(host, home, ["scale"], ["tiny", "tiny2"], train_dataset="tiny")
    assert [c.status for c in again.cells] == ["reused", "reused"]
    # one training, one report row: "trained on Tiny", with both datasets' columns
    from llbench.reports.report import build_report

    rows = [r for r in build_report(home=home, host=host).rows if r.method == "scale"]
    assert len(rows) == 1 and {c[0] for c in rows[0].cells} == {"tiny", "tiny2"}


def test_grid_cells_fail_alone_and_seeds_are_cells(host, home):
    result = _grid(host, home, ["brighten", "broken"], ["tiny"], seeds=(0, 1), retries=1)
    status = {(c.method, c.seed): c.status for c in result.cells}
    assert status == {
        ("brighten", 0): "finished",
        ("brighten", 1): "finished",
        ("broken", 0): "failed",
        ("broken", 1): "failed",
    }
    bad = next(c for c in result.cells if c.method == "broken")
    assert "cannot be built" in bad.error and "2 times" in bad.error
    assert Store(home).get_run(bad.key)["status"] == "failed"
    assert not result.ok


def test_a_new_metric_rescores_saved_outputs_in_shards(host, home):
    first = _grid(host, home, ["brighten"], ["tiny"])
    out = first.cells[0].result.out_dir / "images" / "img0.png"
    before = out.stat().st_mtime_ns
    second = _grid(host, home, ["brighten"], ["tiny"], metrics=["mean", "peak"], shard_size=1)
    cell = second.cells[0]
    assert cell.to_enhance == 0 and cell.to_rescore == 4
    assert set(cell.result.scores) == {"mean", "peak"}
    assert out.stat().st_mtime_ns == before  # scored again, not enhanced again


def test_protocol_paper_and_bad_input(host, home):
    plan = _grid(host, home, ["scale", "brighten"], ["tiny"], protocol="paper", dry_run=True)
    bad, fine = plan.cells
    assert bad.status == "failed" and "declares no training protocol" in bad.error
    assert fine.status == "to run"  # a method that does not train ignores the protocol
    with pytest.raises(ConfigError, match="at least one"):
        _grid(host, home, [], ["tiny"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_options(["partition"])
    assert parse_options(["gpus=1", "partition=gpu", "exclusive=true"]) == {
        "gpus": 1,
        "partition": "gpu",
        "exclusive": True,
    }
    # the curve methods declare the paper's training set
    from llbench.plugins import sgz, zero_dce

    declared = []
    zero_dce.register_methods(declared.append)
    sgz.register_methods(declared.append)
    assert {s.name: s.training_protocol for s in declared} == {"zero-dce": "sice", "sgz": "sice"}


def test_a_preset_and_a_training_set_apply_to_the_methods_of_a_grid_that_have_them(host, home):
    plan = _grid(
        host, home, ["scale", "brighten"], ["tiny"], preset="quick", train_dataset="tiny2",
        dry_run=True,
    )  # fmt: skip
    scale, brighten = plan.cells
    assert scale.status == "needs training" and scale.plan.preset == "quick"
    assert scale.training is not None and scale.training.dataset == "tiny2"
    assert brighten.status == "to run" and brighten.plan.preset is None
    alone = _grid(host, home, ["brighten"], ["tiny"], preset="quick", dry_run=True).cells[0]
    assert alone.status == "failed" and "unknown preset 'quick'" in alone.error


def test_a_claimed_run_is_waited_for_or_reported(host, home):
    first = _run_brighten(host, home)
    store = Store(home)
    store.delete_run(first.key)
    # another live process (our parent) holds the claim on that run key
    assert store.claim(first.key, "other", "elsewhere-host", os.getppid()) is None
    with pytest.raises(BusyError, match="elsewhere-host"):
        _run_brighten(host, home, wait=False)
    # a holder that stopped beating for long is taken over
    store.connect().execute("UPDATE claims SET heartbeat = 0")
    assert _run_brighten(host, home, wait=False).status == "finished"
    assert store.query("SELECT COUNT(*) AS n FROM claims")[0]["n"] == 0  # released


def test_a_dead_holder_on_this_host_is_taken_over(home):
    import socket

    store = Store(home)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert store.claim("k", "a", socket.gethostname(), dead.pid) is None
    assert store.claim("k", "b", socket.gethostname(), os.getpid()) is None  # a's pid is gone
    held = store.claim("k", "c", socket.gethostname(), os.getpid() + 10**7)
    assert held is not None and held["holder"] == "b"  # b (this process) is alive


def _run_brighten(host, home, **kw):
    return llbench.run(
        "brighten", "tiny", metrics=["mean"], home=home, progress=False, host=host, **kw
    )


# -- the executor plugin kind -------------------------------------------------------------------
class CountingExecutor(Executor):
    """A third party's executor: runs tasks in this process and counts them."""

    name = "counting"
    submitted = 0

    def submit(self, fn, arg):
        CountingExecutor.submitted += 1

        class Done(Handle):
            def __init__(self):
                self.value = fn(arg)

            def done(self):
                return True

            def result(self):
                return self.value

        return Done()


class ExecutorPlugin:
    @hookimpl
    def register_executors(register):
        register(ExecutorSpec("counting", lambda options: CountingExecutor(options), "counts"))


def test_a_third_party_executor_runs_the_grid(host, home):
    host.register(ExecutorPlugin, "executor-tests")
    CountingExecutor.submitted = 0
    result = _grid(host, home, ["brighten"], ["tiny", "tiny2"], executor="counting", shard_size=2)
    assert result.ok and result.executor["executor"] == "counting"
    assert CountingExecutor.submitted == 4  # 2 + 2 shards of 4 and 3 images
    with pytest.raises(Exception, match="unknown executor"):
        _grid(host, home, ["brighten"], ["tiny"], executor="nope", force=True)


# -- a real process pool ------------------------------------------------------------------------
KILLER = """
    import os, signal
    from llbench.api import MethodSpec, hookimpl
    from llbench.plugins.gamma.method import GammaCorrection

    class KillOnce(GammaCorrection):
        def enhance(self, low):
            flag = os.environ["LLBENCH_TEST_KILL_FLAG"]
            if not os.path.exists(flag):
                open(flag, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)  # this worker dies mid-shard, once
            return super().enhance(low)

    @hookimpl
    def register_methods(register):
        from llbench.plugins.gamma import DEFAULT_CONFIG
        register(MethodSpec("kill-once", lambda c, d: KillOnce(c, d), "dies once",
                            default_config=DEFAULT_CONFIG))
"""


def _install(site: Path, module: str, code: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{module}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[llbench]\n{module} = {module}\n")


@pytest.fixture
def pool_home(home, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "killer_plugin", KILLER)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("LLBENCH_TEST_KILL_FLAG", str(tmp_path / "killed"))
    monkeypatch.setenv("LLBENCH_PLUGINS", "gamma,killer_plugin,synthetic,core-metrics,executors")
    reset_host()
    yield home
    reset_host()


def test_process_pool_matches_one_worker_and_survives_a_killed_worker(pool_home):
    home = pool_home
    serial = run_grid(["gamma"], ["synthetic"], home=home, progress=False, metrics=["psnr"])
    pooled = run_grid(
        ["kill-once"], ["synthetic"], home=home, progress=False, metrics=["psnr"], workers=2,
        shard_size=3,
    )  # fmt: skip
    cell = pooled.cells[0]
    assert cell.status == "finished", cell.error
    assert pooled.executor == {"executor": "local", "workers": 2, "threads_per_worker": 1}
    assert (Path(os.environ["LLBENCH_TEST_KILL_FLAG"])).exists()  # a worker really died
    assert cell.result.n_images == 9 and cell.result.n_failed == 0
    assert cell.result.scores["psnr"] == pytest.approx(serial.cells[0].result.scores["psnr"])
    n = Store(home).query("SELECT COUNT(*) AS n FROM items WHERE run_key = ?", (cell.key,))
    assert n[0]["n"] == 9  # the retried shard did not duplicate anything


def test_killed_driver_resumes_without_duplicates(pool_home, tmp_path):
    home = pool_home
    Path(os.environ["LLBENCH_TEST_KILL_FLAG"]).touch()  # no worker dies in this test
    cmd = [
        sys.executable, "-c", "from llbench.cli.main import main; main()", "--home", str(home),
        "run", "-m", "gamma,kill-once", "-d", "synthetic", "--metrics", "psnr", "--workers", "2",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(home)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = store.query("SELECT COUNT(*) AS n FROM items WHERE status = 'ok'")[0]["n"]
        if done >= 3 or proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = store.query("SELECT key, status FROM runs ORDER BY method")
    assert [row["status"] for row in runs] == ["finished", "finished"]
    for row in runs:
        n = store.query("SELECT COUNT(*) AS n FROM items WHERE run_key = ?", (row["key"],))
        assert n[0]["n"] == 9


def test_cli_dry_run_lists_cells(host, home):
    from llbench.cli.main import cli

    r = CliRunner().invoke(
        cli, ["run", "-m", "brighten,scale", "-d", "tiny", "--seed", "0,1", "--dry-run"]
    )
    assert r.exit_code == 0, r.output
    assert "4 cell(s)" in r.output and "2 training(s) to run" in r.output
    r = CliRunner().invoke(cli, ["run", "-m", "brighten", "-d", "tiny", "--seed", "a"])
    assert r.exit_code != 0 and "--seed takes integers" in r.output


_DRIVER_STATE: list[str] = []  # filled at run time by the driver: seen by forked workers only


def _worker_state(_: object) -> tuple[int, int, bool]:
    import torch

    return os.getpid(), torch.get_num_threads(), _DRIVER_STATE == ["set in the driver"]


def test_local_pool_forks_when_safe_and_sets_worker_threads(monkeypatch):
    import threading

    import torch

    from llbench.executors import local

    torch.ones(1 << 16).sum()  # the driver has used torch (and its thread pool) before the fork
    if sys.platform.startswith("linux"):
        monkeypatch.setattr(threading, "active_count", lambda: 1)
        assert local.start_method() == "fork"
        monkeypatch.undo()
    stop = threading.Event()
    extra = threading.Thread(target=stop.wait)
    extra.start()
    try:
        assert local.start_method() == "spawn"  # a fork would copy that thread's locks
    finally:
        stop.set()
        extra.join()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(sys.modules[__name__], "_DRIVER_STATE", ["set in the driver"])
    ex = local.LocalExecutor({"workers": 2, "cores": 2})
    try:
        states = {ex.submit(_worker_state, None).result() for _ in range(4)}
    finally:
        ex.close()
    pids = {pid for pid, _, _ in states}
    assert os.getpid() not in pids
    assert {threads for _, threads, _ in states} == {1}
    if sys.platform.startswith("linux"):  # forked: the driver's memory came along
        assert all(forked for _, _, forked in states)
