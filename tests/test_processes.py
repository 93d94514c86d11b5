"""Real `llbench run` processes: concurrent runs on one home, and a run killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from llbench.store.database import Store


def _cmd(home, *args):
    return [
        sys.executable,
        "-c",
        "from llbench.cli.main import main; main()",
        "--home",
        str(home),
        "run",
        "--dataset",
        "synthetic",
        "--device",
        "cpu",
        *args,
    ]


def _env():
    env = dict(os.environ)
    env["LLBENCH_PLUGINS"] = "gamma,lime,synthetic,core-metrics"
    env.pop("LLBENCH_DATA", None)
    return env


def test_concurrent_runs_on_one_home_keep_every_row(tmp_path):
    home = tmp_path / "home"
    # generate the dataset once so the processes race on the database, not on generation
    first = subprocess.run(
        _cmd(home, "--method", "gamma", "--limit", "1", "--metrics", "psnr"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr
    jobs = [
        _cmd(home, "--method", "gamma", "--metrics", "psnr,ssim", "--limit", "6"),
        _cmd(home, "--method", "gamma", "--metrics", "psnr,ssim", "--limit", "6"),
        _cmd(home, "--method", "gamma", "--metrics", "psnr,ssim", "--limit", "6", "--seed", "1"),
    ]
    procs = [
        subprocess.Popen(c, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in jobs
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    store = Store(home)
    runs = store.query("SELECT key, status FROM runs WHERE n_images = 6")
    assert len(runs) == 2 and all(r["status"] == "finished" for r in runs)
    for r in runs:
        assert len(store.done_items(r["key"])) == 6
        n = store.query("SELECT COUNT(*) AS n FROM scores WHERE run_key = ?", (r["key"],))
        assert n[0]["n"] == 12  # 6 images x 2 metrics, no duplicates
    assert store.query("PRAGMA integrity_check")[0][0] == "ok"


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_killed_run_resumes_without_recomputing(tmp_path):
    home = tmp_path / "home"
    args = ("--method", "lime", "--metrics", "psnr", "--limit", "6")
    proc = subprocess.Popen(
        _cmd(home, *args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if (home / "llbench.db").exists():
            rows = Store(home).query("SELECT COUNT(*) AS n FROM items")
            done = rows[0]["n"]
            if done >= 2:
                break
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    from llbench.store.frames import runs_frame

    assert runs_frame(home=home)["status"].tolist() == ["interrupted"]
    store = Store(home)
    before = {r["image"]: r["sha256"] for r in store.query("SELECT image, sha256 FROM items")}
    assert 2 <= len(before) < 6
    key = store.query("SELECT key FROM runs")[0]["key"]
    mtimes = {k: (home / store.done_items(key)[k]["output"]).stat().st_mtime_ns for k in before}
    out = subprocess.run(_cmd(home, *args), env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    items = store.done_items(key)
    assert len(items) == 6 and store.get_run(key)["status"] == "finished"
    for k, mtime in mtimes.items():  # finished images were not enhanced again
        assert (home / items[k]["output"]).stat().st_mtime_ns == mtime
        assert items[k]["sha256"] == before[k]
    n = store.query("SELECT COUNT(*) AS n FROM scores WHERE run_key = ?", (key,))[0]["n"]
    assert n == 6
