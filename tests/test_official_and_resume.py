"""End to end: `--weights official` fetched from a (loopback) release into the cache and used by a
run; a training killed mid-way (SIGKILL) resumes from its checkpoint in a new process."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from plugin_fixtures import Scale, TestPlugin, make_tiny_dataset
from test_download import LoopbackServer

import llbench
from llbench.api import MethodSpec, WeightsRef, hookimpl
from llbench.errors import LLBenchError
from llbench.pluginhost.host import get_host
from llbench.store.database import Store


def _checkpoint(gain: float) -> bytes:
    buf = io.BytesIO()
    torch.save({"weight": torch.full((1, 1), gain)}, buf)
    return buf.getvalue()


def test_official_weights_are_fetched_into_the_cache_and_used(home, monkeypatch):
    monkeypatch.setenv("LLBENCH_PLUGINS", "core-metrics")
    body = _checkpoint(2.0)
    with LoopbackServer() as server:
        server.files["/release/scale.pth"] = body

        class Released:
            @hookimpl
            def register_methods(register):
                register(
                    MethodSpec(
                        "scale-released",
                        lambda c, d: Scale(c, d),
                        "a gain with released weights",
                        trains=True,
                        default_config={"lr": 0.5, "steps": 6, "crash_at": 0},
                        official_weights=WeightsRef(
                            url=server.url("/release/scale.pth"),
                            sha256=hashlib.sha256(body).hexdigest(),
                            filename="scale.pth",
                        ),
                    )
                )

        host = get_host()
        host.register(TestPlugin, "tests")
        host.register(Released, "released")
        make_tiny_dataset(home / "data" / "tiny")
        r = llbench.run(
            "scale-released", "tiny", weights="official", metrics=["mean"], home=home,
            progress=False, host=host,
        )  # fmt: skip
        cached = home / "cache" / "weights" / "scale-released" / "scale.pth"
        assert cached.read_bytes() == body
        assert r.ok and Store(home).get_run(r.key)["weights"] == str(cached)
        assert not Store(home).query("SELECT * FROM trainings")  # nothing was trained
        # outputs are the inputs times the released gain (2.0), clamped
        assert r.scores["mean"] > 0.2
        n_requests = len(server.requests)
        again = llbench.run(
            "scale-released", "tiny", weights="official", metrics=["mean"], home=home,
            progress=False, host=host,
        )  # fmt: skip
        assert again.reused and len(server.requests) == n_requests  # the cache is used
        cached.write_bytes(b"tampered")
        with pytest.raises(LLBenchError, match="sha256"):
            llbench.run(
                "scale-released", "tiny", weights="official", metrics=["mean"], home=home,
                progress=False, host=host, force=True,
            )  # fmt: skip


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_checkpoint(tmp_path):
    home = tmp_path / "home"
    config = tmp_path / "c.toml"
    config.write_text("max_steps = 30\ncheckpoint_every = 3\n")
    cmd = [
        sys.executable, "-c", "from llbench.cli.main import main; main()", "--home", str(home),
        "run", "--method", "zero-dce", "--dataset", "synthetic", "--preset", "quick",
        "--config", str(config), "--metrics", "psnr",
    ]  # fmt: skip
    env = {**os.environ, "LLBENCH_PLUGINS": "zero-dce,synthetic,core-metrics"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    checkpoints = home / "train"
    while time.monotonic() < deadline and proc.poll() is None:
        if any(checkpoints.glob("*/checkpoint.pt")) and Store(home).query(
            "SELECT 1 FROM train_log WHERE step >= 6 LIMIT 1"
        ):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(home)
    assert store.query("SELECT status FROM trainings")[0]["status"] == "running"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    row = store.query("SELECT status, provenance FROM trainings")[0]
    assert row["status"] == "finished"
    info = json.loads(row["provenance"])["method_provenance"]["training"]
    assert info["resumed_from_step"] >= 6 and info["steps"] == 30
    steps = [r["step"] for r in store.query("SELECT DISTINCT step FROM train_log ORDER BY step")]
    assert steps == list(range(1, 31))  # every step logged once, none lost or repeated
