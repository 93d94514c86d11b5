"""HiLLIE's loop as a state machine: a stage waits for people's labels (WaitingForInput), and
resumes once three annotators have answered through the study server's HTTP API."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from llbench.api import TrainContext
from llbench.api.datasets import Sample
from llbench.errors import WaitingForInput

TINY = {
    "stages": 2,
    "k": 3,
    "annotator": "study",
    "study": {"port": 8123},
    "base_preset": "quick",
    "base_config": {"max_steps": 4, "checkpoint_every": 2, "train_size": 32, "batch_size": 2},
    "pretrain_snapshots": 1,
    "ranker_crop": 32,
    "score_size": 32,
    "finetune_crop": 32,
    "ranker_g0": {"steps": 2, "batch_size": 2, "checkpoint_every": 2},
    "ranker_gn": {"steps": 2, "batch_size": 2, "checkpoint_every": 2},
    "finetune": {"steps": 1, "checkpoint_every": 1},
    "vgg_if_missing": "random",
    "eval_limit": 2,
    "stage_metrics": ["niqe"],
}


class _Data:
    name = "tiny-unpaired"

    def __init__(self, samples):
        self._samples = samples

    def samples(self, split):
        return list(self._samples)


def _images(folder: Path, n: int = 4) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        arr = rng.uniform(0, 1, (96, 112, 3)) ** 2 * 60 + np.linspace(0, 30, 112)[None, :, None]
        p = folder / f"im{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr.astype(np.uint8)).save(p)
        out.append(Sample(f"im{i}", p))
    return out


def _call(port: int, method: str, path: str, body: dict | None = None) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    out = json.loads(resp.read())
    conn.close()
    assert resp.status == 200, out
    return out


def _label_all(port: int, participant: str, choice: str) -> int:
    _call(port, "POST", "/api/session", {"participant": participant})
    trial = _call(port, "GET", f"/api/next?participant={participant}")
    answered = 0
    while not trial["done"]:
        assert len(trial["images"]) == 2  # two images, nothing else about the pair
        reply = _call(
            port,
            "POST",
            "/api/answer",
            {"participant": participant, "item": trial["item"], "choice": choice},
        )
        trial = reply["next"]
        answered += 1
    return answered


def test_stage_waits_for_labels_and_resumes_after_three_annotators(home, tmp_path):
    from llbench.pluginhost.host import get_host
    from llbench.study import StudyServer
    from llbench.study.store import StudyStore

    samples = _images(tmp_path / "data")
    wd = home / "train" / "0123456789abcdefabcd"
    ctx = TrainContext(
        dataset=_Data(samples),
        samples=samples,
        workdir=wd,
        seed=0,
        device=torch.device("cpu"),
        home=home,
    )
    method = get_host().method("hillie").build(TINY, torch.device("cpu"))
    with pytest.raises(WaitingForInput) as waiting:
        method.fit(ctx)
    msg = str(waiting.value)
    name = "hillie-0123456789ab-s1"
    assert "stage 1 waits for labels: 0/3 pairs" in msg
    assert f"study serve {name}" in msg and "http://127.0.0.1:8123/" in msg
    assert (wd / "stage0" / "enhancer.pt").is_file() and (wd / "stage0" / "eval.json").is_file()
    selected = json.loads((wd / "stage1" / "selected.json").read_text())
    assert len(selected) == 3 and selected == sorted(selected, key=lambda r: -r["gap"])
    assert not (wd / "stage1" / "labels.json").exists()
    assert len(StudyStore(home).items(name)) == 3

    srv = StudyServer(home, name, host="127.0.0.1", port=0).start()
    try:
        port = int(srv.httpd.server_address[1])
        assert _label_all(port, "ann1", "left") == 3
        assert _label_all(port, "ann2", "right") == 3
        # two of three answers: still waiting, and the message shows the progress; nothing redone
        g0 = (wd / "stage0" / "ranker.pt").stat().st_mtime_ns
        with pytest.raises(WaitingForInput, match=r"0/3 pairs .*ann1 3/3, ann2 3/3"):
            method.fit(ctx)
        assert (wd / "stage0" / "ranker.pt").stat().st_mtime_ns == g0
        assert _label_all(port, "ann3", "left") == 3
    finally:
        srv.stop()

    fresh = get_host().method("hillie").build(TINY, torch.device("cpu"))  # another day
    fresh.fit(ctx)
    labels = json.loads((wd / "stage1" / "labels.json").read_text())
    assert [x["pair"] for x in labels] == [r["id"] for r in selected]
    assert all(x["votes_a"] + x["votes_b"] == 3 for x in labels)
    for name_ in ("ranker.pt", "enhancer.pt", "eval.json", "timings.json"):
        assert (wd / "stage1" / name_).is_file()
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["labels"] == 3 and set(summary["accuracy"]) == {"g0", "g1"}
    final = torch.load(wd / "stage1" / "enhancer.pt", weights_only=True)
    for k, v in fresh.state_dict().items():
        torch.testing.assert_close(v, final[k])
    info = fresh.provenance()["training"]
    assert [s["stage"] for s in info["stages"]] == [0, 1]
    assert info["stages"][1]["labels"] == 3
