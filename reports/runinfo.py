"""``llbench runs show KEY``: everything stored about one run, in one place."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from llbench import paths
from llbench.store.database import Store
from llbench.store.frames import run_fields


def run_details(key: str, *, home: str | Path | None = None) -> dict[str, Any]:
    """Identity, config, weights, provenance, artifacts, mean scores and failures of a run
    (``key`` may be a unique prefix)."""
    from llbench.reports.records import resolve_run

    home_dir = paths.home(home)
    store = Store(home_dir)
    row = resolve_run(store, key)
    f = run_fields(row, home_dir)
    items = store.items(row["key"])
    failures = [
        {"image": r["image"], "status": r["status"], "error": r["error"]}
        for r in items
        if r["error"] or r["status"] != "ok"
    ]
    prov = f.pop("provenance")
    training = prov.get("training") or None
    return {
        "key": row["key"],
        "method": row["method"],
        "dataset": row["dataset"],
        "split": row["split"],
        "status": row["status"],
        "n_images": row["n_images"],
        "done": sum(1 for r in items if r["status"] == "ok"),
        "n_failed": row["n_failed"],
        "seed": f["seed"],
        "preset": f["preset"],
        "limit": f["limit"],
        "weights": {
            "kind": f["weights_kind"],
            "path": f["weights"],
            "sha256": f["weights_hash"],
            "training": training,
        },
        "config": f["config"],
        "out_dir": row["out_dir"],
        "started": _when(row["started"]),
        "finished": _when(row["finished"]),
        "error": row["error"],
        "scores": {k: v for k, v in sorted(store.summary_scores(row["key"]).items())},
        "artifacts": [dict(a) for a in store.artifacts(row["key"])],
        "failures": failures,
        "provenance": {k: v for k, v in prov.items() if k not in ("training",)},
    }


def print_run_details(info: dict[str, Any], console) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"run {info['key']}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    w = info["weights"]
    weights = w["kind"]
    if w["kind"] == "trained" and w["training"]:
        tr = w["training"]
        weights = f"trained on {tr.get('dataset')} ({tr.get('n_images')} images, training {tr.get('key')})"
    if w["path"]:
        weights += f"\n{w['path']}\nsha256 {w['sha256']}"
    prov = info["provenance"]
    plugin = prov.get("plugin") or {}
    rows = [
        ("method", info["method"]),
        ("dataset", f"{info['dataset']} ({info['split']})"),
        ("status", info["status"] + (f": {info['error']}" if info["error"] else "")),
        ("images", f"{info['done']} of {info['n_images']} done, {info['n_failed']} with errors"),
        ("seed", info["seed"]),
        ("preset", info["preset"] or "-"),
        ("limit", info["limit"] if info["limit"] is not None else "- (whole split)"),
        ("weights", weights),
        ("config", json.dumps(info["config"], indent=1, sort_keys=True)),
        ("scores", "\n".join(f"{k} = {_num(v)}" for k, v in info["scores"].items()) or "-"),
        ("outputs", info["out_dir"]),
        ("started / finished", f"{info['started']} / {info['finished']}"),
        ("device", prov.get("device")),
        ("llbench", f"{prov.get('llbench')} (git {prov.get('git_sha') or 'unknown'})"),
        (
            "plugin",
            f"{plugin.get('plugin')} {plugin.get('distribution', '')} {plugin.get('version', '')}",
        ),
        ("packages", ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v)),
        ("manifest", prov.get("manifest_hash")),
        ("method provenance", json.dumps(prov.get("method_provenance") or {}, sort_keys=True)),
    ]
    for name, value in rows:
        t.add_row(name, escape(str(value)))
    console.print(t)
    if info["failures"]:
        f = Table(title=f"{len(info['failures'])} image(s) with errors")
        for col in ("image", "status", "error"):
            f.add_column(col, overflow="fold")
        for r in info["failures"]:
            f.add_row(escape(r["image"]), r["status"], escape(str(r["error"] or "")))
        console.print(f)


def _when(t: float | None) -> str:
    if not t:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(t)))


def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)
