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


# The run to kill: LIME whose third image never finishes, so that the kill always lands after
# exactly the images enhanced before it, however fast or slow the machine (polling the database
# for "2 done" raced a fast run to its end, and a slow one to the deadline).
_BLOCKING = r"""
import os, time
from llbench.plugins.lime.method import LIME

real, done = LIME.enhance, [0]

def enhance(self, low):
    if done[0] >= 2:
        open(os.environ["LLBENCH_TEST_BLOCKED"], "w").close()
        while True:
            time.sleep(60)
    done[0] += low.shape[0]
    return real(self, low)

LIME.enhance = enhance
from llbench.cli.main import main
main()
"""


def _wait_for(condition, what: str, timeout: float = 300.0) -> None:
    """Poll ``condition`` until true; the bound only ends a test that is failing anyway."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what} after {timeout} s"
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_killed_run_resumes_without_recomputing(tmp_path):
    home = tmp_path / "home"
    args = ("--method", "lime", "--metrics", "psnr", "--limit", "6")
    blocked = tmp_path / "blocked"
    env = {**_env(), "LLBENCH_TEST_BLOCKED": str(blocked)}
    cmd = _cmd(home, *args)
    cmd[1:3] = ["-c", _BLOCKING]
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:

        def stored() -> int:
            if proc.poll() is not None:
                raise AssertionError(f"the run ended early: {log.read_text()}")
            if not blocked.exists():
                return 0
            return Store(home).query("SELECT COUNT(*) AS n FROM items")[0]["n"]

        # blocked in its third image, once the images before it are stored
        _wait_for(lambda: stored() >= 2, "two stored images")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
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


def test_the_suite_keeps_out_of_the_developers_folders(tmp_path):
    # conftest.py points HOME, TORCH_HOME and the XDG folders into a folder of this session:
    # weights in the developer's torch cache must not make a test pass, and Chromium (the study
    # browser tests) must not write its profile or crash reports into the real home.
    import pwd

    real_home = os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir)
    probe = (
        "import os, torch, matplotlib; print(torch.hub.get_dir()); "
        "print(matplotlib.get_cachedir()); "
        "print(*(os.environ[v] for v in ('HOME', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME')), sep='\\n')"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    from conftest import SESSION_HOME

    for line in out.stdout.splitlines():
        path = os.path.realpath(line)
        assert path.startswith(os.path.realpath(SESSION_HOME)), line
        assert not path.startswith(real_home + os.sep) or real_home == "/", line
