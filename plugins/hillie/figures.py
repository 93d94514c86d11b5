"""The paper's figures and Table 3 from a HiLLIE training's stored stages (see :mod:`.loop`).

* Fig. 3: no-reference scores (and PSNR/SSIM where the evaluation split has references) of
  f(0) .. f(N) on the evaluation split, by stage (``fig3_scores.png``);
* Fig. 5: accuracy of each g(n) against the collected labels, by the number of labels it was
  trained on, overall and per label stage (``fig5_accuracy.png``);
* Fig. 10: the top pairs of each stage's S(n), with their g(n-1) score gap delta and the
  annotators' choice (a check on the preferred image, ``fig10_stage<n>.png``);
* Table 3: the pseudo-label accuracy of g(n) on f(n) and f(n+1), ``table3.md`` / ``.csv``.

Nothing is recomputed: everything comes from ``eval.json``, ``summary.json``,
``selected.json`` and ``labels.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .loop import collect_stages, read_json


def stage_scores(workdir: Path) -> dict[str, list[float]]:
    """``metric -> [score of f(0), f(1), ...]`` from the stages' ``eval.json``."""
    scores: dict[int, dict[str, float]] = {}
    for row in collect_stages(workdir)["stages"]:
        ev = row.get("eval") or {}
        for key, vals in ev.items():
            if key.startswith("f") and key[1:].isdigit() and isinstance(vals, dict):
                scores[int(key[1:])] = vals
    metrics = sorted({m for v in scores.values() for m in v})
    return {m: [scores[f].get(m, float("nan")) for f in sorted(scores)] for m in metrics}


def table3_rows(workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for row in collect_stages(workdir)["stages"]:
        ev = row.get("eval") or {}
        if "pseudo_label_accuracy" in ev:
            n = row["stage"]
            rows.append(
                {
                    "ranker": f"g({n}) on f({n}) and f({n + 1})",
                    "accuracy": ev["pseudo_label_accuracy"],
                    "images": ev.get("images", 0),
                }
            )
    return rows


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fig3(workdir: Path, out: Path) -> Path | None:
    scores = stage_scores(workdir)
    if not scores:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(scores), figsize=(3.2 * len(scores), 2.8), squeeze=False)
    for ax, (metric, vals) in zip(axes[0], scores.items(), strict=True):
        ax.plot(range(len(vals)), vals, marker="o")
        ax.set_xticks(range(len(vals)), [f"f({i})" for i in range(len(vals))])
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    fig.suptitle("Enhancer by stage (evaluation split)")
    fig.tight_layout()
    path = out / "fig3_scores.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fig5(workdir: Path, out: Path) -> Path | None:
    summary = workdir / "summary.json"
    if not summary.is_file():
        return None
    acc = read_json(summary)["accuracy"]
    stages = {row["stage"]: row for row in collect_stages(workdir)["stages"]}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    xs, overall = [], []
    for name, per in sorted(acc.items(), key=lambda kv: int(kv[0][1:])):
        n = int(name[1:])
        used = sum(stages.get(s, {}).get("labels", 0) for s in range(1, n + 1))
        xs.append(used)
        total = sum(stages.get(int(s[1:]), {}).get("labels", 0) for s in per)
        overall.append(
            sum(a * stages[int(s[1:])]["labels"] for s, a in per.items()) / total
            if total
            else float("nan")
        )
        ax.annotate(f"g({n})", (used, overall[-1]), textcoords="offset points", xytext=(3, 4))
    ax.plot(xs, overall, marker="o")
    ax.set_xlabel("labels the ranker was trained on")
    ax.set_ylabel("accuracy on all collected labels")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "fig5_accuracy.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fig10(workdir: Path, out: Path, stage: int, top: int = 10) -> Path | None:
    d = workdir / f"stage{stage}"
    if not (d / "selected.json").is_file():
        return None
    from llbench.io.images import read_image

    sel = read_json(d / "selected.json")[:top]
    labels = {}
    if (d / "labels.json").is_file():
        labels = {x["pair"]: x for x in read_json(d / "labels.json")}
    plt = _plt()
    fig, axes = plt.subplots(2, len(sel), figsize=(2.0 * len(sel), 3.6), squeeze=False)
    for j, r in enumerate(sel):
        lab = labels.get(r["id"])
        for i, side in enumerate(("a", "b")):
            ax = axes[i][j]
            ax.imshow(read_image(r[f"path_{side}"]))
            ax.set_xticks([])
            ax.set_yticks([])
            mark = "" if lab is None else (" \u2713" if lab["winner"] == side else " \u2717")
            ax.set_title(f"{r[f'condition_{side}']}{mark}", fontsize=8)
        axes[1][j].set_xlabel(f"{r['content']}\n\u03b4={r['gap']:.3g}", fontsize=8)
    fig.suptitle(f"Top pairs of S({stage}) by the g({stage - 1}) score gap")
    fig.tight_layout()
    path = out / f"fig10_stage{stage}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def table3(workdir: Path, out: Path) -> Path | None:
    rows = table3_rows(workdir)
    if not rows:
        return None
    lines = ["| ranker | pseudo-label accuracy | images |", "| --- | ---: | ---: |"]
    lines += [f"| {r['ranker']} | {r['accuracy']:.2f} | {r['images']} |" for r in rows]
    path = out / "table3.md"
    path.write_text("\n".join(lines) + "\n")
    (out / "table3.csv").write_text(
        "ranker,accuracy,images\n"
        + "".join(f"{r['ranker']},{r['accuracy']:.4f},{r['images']}\n" for r in rows)
    )
    return path


def draw_all(workdir: str | Path, out: str | Path, top: int = 10) -> list[Path]:
    """Every figure and Table 3 that the stored stages allow; returns the files written."""
    workdir, out = Path(workdir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    made = [fig3(workdir, out), fig5(workdir, out), table3(workdir, out)]
    n = 1
    while (workdir / f"stage{n}").is_dir():
        made.append(fig10(workdir, out, n, top))
        n += 1
    return [p for p in made if p is not None]
