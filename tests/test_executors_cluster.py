"""Executors on real clusters: a single-node Slurm (with accounting) through submitit, and a local
Ray cluster. The services are brought up here (.ci/slurm-up.sh; ray.init) and torn down after;
where their packages are missing the tests skip saying what to install (.ci/run installs them).
Run with ``make test-cluster`` (``pytest -m "slurm or ray"``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from llbench.engine.grid import run_grid
from llbench.errors import ConfigError
from llbench.pluginhost.host import reset_host
from llbench.store.database import Store

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = """
    import time
    from llbench.api import MethodSpec, hookimpl
    from llbench.plugins.gamma import DEFAULT_CONFIG
    from llbench.plugins.gamma.method import GammaCorrection

    class Sleepy(GammaCorrection):
        def enhance(self, low):
            time.sleep(600)
            return super().enhance(low)

    def broken(config, device):
        raise RuntimeError("this method cannot be built")

    @hookimpl
    def register_methods(register):
        register(MethodSpec("sleepy", lambda c, d: Sleepy(c, d), "sleeps",
                            default_config=DEFAULT_CONFIG))
        register(MethodSpec("broken", broken, "fails to build"))
"""


@pytest.fixture
def cluster_home(home, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "cluster_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "cluster_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cluster-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[llbench]\ncluster_plugin = cluster_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv(
        "LLBENCH_PLUGINS", "gamma,he,cluster_plugin,synthetic,core-metrics,executors"
    )
    reset_host()
    yield home
    reset_host()


def _grid(home, methods, **kw):
    kw.setdefault("metrics", ["psnr"])
    return run_grid(methods, ["synthetic"], home=home, progress=False, **kw)


# -- Slurm -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def slurm():
    if importlib.util.find_spec("submitit") is None:
        pytest.skip("needs submitit (pip install 'llbench[slurm]')")
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        pytest.skip(
            "needs Slurm: apt-get install slurmctld slurmd slurm-client munge slurmdbd "
            "mariadb-server (.ci/run does this)"
        )
    if os.geteuid() != 0:
        pytest.skip("bringing up Slurm here needs root")
    up = subprocess.run(["bash", str(ROOT / ".ci/slurm-up.sh")], capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"Slurm did not come up:\n{up.stdout}\n{up.stderr}")
    yield up.stdout.strip()
    subprocess.run(["bash", str(ROOT / ".ci/slurm-down.sh")], capture_output=True)


@pytest.mark.slurm
def test_grid_through_slurm_matches_local(slurm, cluster_home, tmp_path):
    local = _grid(cluster_home, ["gamma", "he"])
    store = Store(cluster_home)
    for c in local.cells:
        store.delete_run(c.key)
    options = {"time_min": 10, "cpus": 1, "folder": str(tmp_path / "jobs")}
    with pytest.raises(ConfigError, match="node-local"):
        _grid(cluster_home, ["gamma"], executor="submitit", executor_options=options)
    options["shared_roots"] = str(tmp_path.parent)  # one machine: its /tmp is shared
    result = _grid(
        cluster_home, ["gamma", "he"], executor="submitit", workers=2, executor_options=options
    )
    assert result.ok, [c.error for c in result.cells]
    assert result.executor["executor"] == "submitit"
    for a, b in zip(local.cells, result.cells, strict=True):
        assert a.key == b.key
        assert b.result.scores["psnr"] == pytest.approx(a.result.scores["psnr"])
    assert list((tmp_path / "jobs").rglob("*_log.out"))  # the work really ran as Slurm jobs


@pytest.mark.slurm
def test_failing_and_cancelled_jobs_are_reported_not_waited_on(slurm, cluster_home, tmp_path):
    options = {"time_min": 10, "cpus": 1, "folder": str(tmp_path / "jobs")}
    options["shared_roots"] = str(tmp_path.parent)
    cancelled = threading.Event()

    def cancel_sleepy():
        """Cancel this test's own job (found through its submitit folder) once it runs."""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not cancelled.is_set():
            ids = [p.name.split("_")[0] for p in (tmp_path / "jobs").rglob("*_submitted.pkl")]
            for job in ids:
                state = subprocess.run(
                    ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True
                ).stdout.strip()
                if state == "RUNNING":
                    subprocess.run(["scancel", job])
                    cancelled.set()
                    return
            time.sleep(0.5)

    killer = threading.Thread(target=cancel_sleepy)
    killer.start()
    started = time.monotonic()
    result = _grid(
        cluster_home, ["sleepy"], executor="submitit", executor_options=options, retries=0,
        shard_size=9,
    )  # fmt: skip
    killer.join()
    assert cancelled.is_set()
    cell = result.cells[0]
    assert cell.status == "failed" and "failed 1 times" in cell.error
    assert time.monotonic() - started < 300  # reported, not waited on forever
    broken = _grid(
        cluster_home, ["broken", "gamma"], executor="submitit", executor_options=options, retries=1
    )
    status = {c.method: c.status for c in broken.cells}
    assert status == {"broken": "failed", "gamma": "finished"}
    assert "cannot be built" in broken.cells[0].error


# -- Ray ---------------------------------------------------------------------------------------
@pytest.mark.ray
def test_grid_on_a_local_ray_cluster(cluster_home):
    if importlib.util.find_spec("ray") is None:
        pytest.skip("needs ray (pip install 'llbench[ray]'; .ci/run does this)")
    local = _grid(cluster_home, ["gamma"])
    Store(cluster_home).delete_run(local.cells[0].key)
    result = _grid(cluster_home, ["gamma", "broken"], executor="ray", workers=2, retries=1)
    cells = {c.method: c for c in result.cells}
    assert cells["gamma"].status == "finished"
    assert cells["gamma"].result.scores["psnr"] == pytest.approx(
        local.cells[0].result.scores["psnr"]
    )
    assert cells["broken"].status == "failed" and "cannot be built" in cells["broken"].error
    assert result.executor == {"executor": "ray", "workers": 2, "address": "local"}
