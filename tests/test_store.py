"""The SQLite store under concurrent writers."""

from __future__ import annotations

import multiprocessing as mp

from llbench.store.database import DATASET_ROW, Store


def _writer(home: str, worker: int, n: int) -> None:
    store = Store(home)
    store.start_run(f"run{worker}", method="m", dataset="d", split="test", n_images=n)
    for i in range(n):
        store.record_item(f"run{worker}", f"img{i}", "ok", {"psnr": float(i), "ssim": 0.5})
        # every worker also rewrites one shared row: must stay a single row
        store.record_item("shared", "img", "ok", {"psnr": float(worker)})
    store.finish_run(f"run{worker}", "finished")


def test_concurrent_processes_lose_and_duplicate_nothing(tmp_path):
    home = str(tmp_path / "home")
    Store(home)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(home, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = Store(home)
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    for w in range(4):
        items = store.done_items(f"run{w}")
        assert len(items) == 40
        n = store.query("SELECT COUNT(*) AS n FROM scores WHERE run_key = ?", (f"run{w}",))
        assert n[0]["n"] == 80
        assert store.get_run(f"run{w}")["status"] == "finished"
    assert store.query("SELECT COUNT(*) AS n FROM scores WHERE run_key = 'shared'")[0]["n"] == 1


def test_record_item_replaces_scores_and_nonfinite_become_null(tmp_path):
    store = Store(tmp_path)
    store.record_item("k", "a", "ok", {"psnr": 10.0, "ssim": 0.3})
    store.record_item("k", "a", "ok", {"psnr": float("inf")})
    rows = store.query("SELECT metric, value FROM scores WHERE run_key = 'k'")
    assert [(r["metric"], r["value"]) for r in rows] == [("psnr", None)]
    store.record_scores("k", DATASET_ROW, {"miou": 0.5})
    assert store.query("SELECT value FROM scores WHERE image = '*'")[0]["value"] == 0.5


def test_failed_transaction_rolls_back(tmp_path):
    store = Store(tmp_path)
    try:
        with store.transaction() as conn:
            conn.execute("INSERT INTO items (run_key, image, status) VALUES ('k', 'a', 'ok')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert store.done_items("k") == {}
