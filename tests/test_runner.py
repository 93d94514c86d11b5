"""The runner: reuse, resume, failures recorded per image, training, provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from plugin_fixtures import make_tiny_dataset, run_tiny, tiny_host

import llbench
from llbench.errors import ConfigError, DatasetError, UnknownNameError
from llbench.io.images import read_image
from llbench.store.database import Store


@pytest.fixture
def host(home, monkeypatch):
    return tiny_host(home, monkeypatch, "core-metrics")


_run = run_tiny


def test_run_writes_8bit_outputs_and_scores_them(host, home):
    r = _run(host, home)
    assert r.status == "finished" and r.n_images == 4 and r.n_failed == 0
    outs = sorted((r.out_dir / "images").glob("*.png"))
    assert [p.stem for p in outs] == ["img0", "img1", "img2", "img3"]
    low = read_image(home / "data/tiny/test/low/img1.png").astype(float) / 255
    expected = np.round(low**0.5 * 255).astype(np.uint8)
    np.testing.assert_array_equal(read_image(outs[1]), expected)
    # the score is computed from the saved 8-bit values
    saved_means = [read_image(p).astype(float).mean() / 255 for p in outs]
    assert r.scores["mean"] == pytest.approx(np.mean(saved_means), abs=1e-6)


def test_finished_run_is_reused_and_force_redoes(host, home):
    first = _run(host, home)
    again = _run(host, home)
    assert again.reused and again.key == first.key
    forced = _run(host, home, force=True)
    assert not forced.reused and forced.key == first.key
    rows = Store(home).query("SELECT COUNT(*) AS n FROM items WHERE run_key = ?", (first.key,))
    assert rows[0]["n"] == 4


def test_config_changes_the_key(host, home):
    a = _run(host, home)
    b = _run(host, home, config={"gamma": 0.7})
    assert a.key != b.key
    with pytest.raises(ConfigError, match="unknown config key 'gama'"):
        _run(host, home, config={"gama": 0.7})


def test_interrupted_run_resumes_without_recomputing(host, home, monkeypatch):
    import llbench.engine.execute as execute

    calls = []
    real = execute.process_batch

    def flaky(job, batch):
        calls.append(batch[0].key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job, batch)

    monkeypatch.setattr(execute, "process_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        _run(host, home)
    store = Store(home)
    row = store.query("SELECT key, status FROM runs")[0]
    assert row["status"] == "interrupted"
    assert len(store.done_items(row["key"])) == 2
    calls.clear()
    r = _run(host, home)
    assert calls == ["img2", "img3"]
    assert r.status == "finished" and r.n_failed == 0
    n = store.query("SELECT COUNT(*) AS n FROM scores WHERE run_key = ?", (r.key,))[0]["n"]
    assert n == 4  # one score per image, no duplicates


def test_new_metric_scores_saved_outputs_without_enhancing(host, home, monkeypatch):
    import llbench.engine.execute as execute

    first = _run(host, home)
    monkeypatch.setattr(execute, "process_batch", lambda *a, **k: pytest.fail("re-enhanced"))
    r = _run(host, home, metrics=["mean", "peak"])
    assert r.key == first.key and set(r.scores) == {"mean", "peak"}


def test_nan_output_fails_that_image_only(host, home):
    r = _run(host, home, method="nan-method")
    failed = dict(r.failures)
    assert set(failed) == {"img3"}  # only the brightest input exceeds the threshold
    assert "NaN" in failed["img3"] and "img3.png" in failed["img3"]
    assert r.n_failed == 1 and r.status == "finished" and not r.ok


def test_wrong_shape_is_reported(host, home):
    r = _run(host, home, method="wrong-shape")
    assert r.n_failed == 4
    assert all("shape" in e for _, e in r.failures)


def test_corrupt_and_mismatched_images_are_failed_items(host, home):
    root = home / "data" / "tiny" / "test"
    (root / "low" / "img0.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    from llbench.io.images import write_png

    write_png(root / "high" / "img1.png", np.zeros((10, 10, 3), np.uint8))
    r = _run(host, home)
    failed = dict(r.failures)
    assert set(failed) == {"img0", "img1"}
    assert "cannot read image" in failed["img0"] and "img0.png" in failed["img0"]
    assert "mismatched sizes" in failed["img1"]
    assert r.scores["mean"] > 0  # the others were scored


def test_unmatched_pairs_list_the_files(host, home):
    (home / "data/tiny/test/high/img2.png").rename(home / "data/tiny/test/high/other.png")
    with pytest.raises(DatasetError, match=r"img2\.png.*other\.png"):
        _run(host, home)


def test_unknown_names_list_known_ones(host, home):
    with pytest.raises(UnknownNameError, match="Did you mean: brighten"):
        llbench.run("brighen", "tiny", home=home, host=host, progress=False)
    with pytest.raises(UnknownNameError, match="Known metrics:.*mean"):
        _run(host, home, metrics=["nope"])


def test_limit(host, home):
    r = _run(host, home, limit=2)
    assert r.n_images == 2 and len(list((r.out_dir / "images").glob("*.png"))) == 2


def test_training_runs_resumes_and_is_reused(host, home):
    with pytest.raises(KeyboardInterrupt):
        _run(host, home, method="scale", config={"crash_at": 3})
    store = Store(home)
    t = store.query("SELECT * FROM trainings")[0]
    assert t["status"] == "interrupted"
    ck = list((home / "train").glob("*/checkpoint.pt"))
    assert len(ck) == 1
    r = _run(host, home, method="scale", config={"crash_at": 3}, force=False)
    # resumed: the log has each step exactly once
    steps = [row["step"] for row in store.query("SELECT step FROM train_log ORDER BY step")]
    assert steps == list(range(6))
    assert r.status == "finished"
    prov = json.loads(store.get_run(r.key)["provenance"])
    assert prov["training"]["n_images"] == 3 and prov["weights_hash"]
    assert prov["seed"] == 0 and prov["packages"]["torch"]
    assert prov["plugin"]["plugin"] == "tests"
    again = _run(host, home, method="scale", config={"crash_at": 3})
    assert again.reused


def test_training_needs_train_split(host, home):
    import shutil

    shutil.rmtree(home / "data/tiny/train")
    with pytest.raises(DatasetError, match="trains on the training split.*--weights"):
        _run(host, home, method="scale")


def test_weights_file_skips_training(host, home, tmp_path):
    import torch

    w = tmp_path / "w.pt"
    torch.save({"weight": torch.tensor([[2.0]])}, w)
    r = _run(host, home, method="scale", weights=str(w))
    assert r.status == "finished"
    assert Store(home).query("SELECT COUNT(*) AS n FROM trainings")[0]["n"] == 0
    prov = json.loads(Store(home).get_run(r.key)["provenance"])
    assert prov["weights"] == str(w)
    art = Store(home).query("SELECT kind, path, sha256 FROM artifacts WHERE run_key = ?", (r.key,))
    assert [(a["kind"], a["path"]) for a in art] == [("weights", str(w))]
    assert art[0]["sha256"] == prov["weights_hash"]


def test_preset_changes_config(host, home):
    r = _run(host, home, method="scale", preset="quick")
    cfg = json.loads(Store(home).get_run(r.key)["config"])
    assert cfg["steps"] == 2
    with pytest.raises(ConfigError, match="presets: quick"):
        _run(host, home, method="scale", preset="slow")


def test_batches_give_the_same_outputs_as_single_images(host, home):

    # mixed sizes: the runner batches only images of one shape together
    make_tiny_dataset(home / "data" / "tiny", n_test=5, size=(24, 32))
    from llbench.io.images import write_png

    rng = np.random.default_rng(1)
    for name in ("img3", "img4"):
        hi = rng.integers(0, 255, (20, 28, 3), dtype=np.uint8)
        write_png(home / "data/tiny/test/high" / f"{name}.png", hi)
        write_png(home / "data/tiny/test/low" / f"{name}.png", hi // 4)
    store = Store(home)
    one = _run(host, home, batch_size=1)
    hashes = {k: r["sha256"] for k, r in store.done_items(one.key).items()}
    many = _run(host, home, batch_size=3, force=True)
    assert one.key == many.key and many.n_failed == 0
    assert {k: r["sha256"] for k, r in store.done_items(many.key).items()} == hashes
    assert len(hashes) == 5 and many.scores == pytest.approx(one.scores)


def test_tables_keep_full_split_numbers_over_limited_or_partial_runs(host, home):
    full = _run(host, home, metrics=["mean"])
    _run(host, home, metrics=["peak"], limit=1)  # later, limited, another metric
    _run(host, home, metrics=["mean"], limit=2)  # later, limited, same metric
    frame = llbench.results(home=home)
    got = dict(zip(frame["metric"], frame["value"], strict=True))
    assert got["mean"] == pytest.approx(full.scores["mean"])  # not the 2-image mean
    assert set(got) == {"mean", "peak"}  # the limited run still fills a metric nobody else has
    assert len(llbench.results(home=home, latest=False)) == 3
