"""The HTML report: one page with the tables, figures, a per-image gallery, each run's
provenance and the metric definitions (``llbench report --format html -o report.html``).

The page needs nothing from the network. Images are embedded as data URIs (``embed=True``, the
default when the page goes to stdout) or copied into ``<name>_files/`` beside the page. The
gallery shows, per dataset, the input, every row's output and the ground truth of one image at a
time with its per-image scores; clicking a tile zooms every tile into the same spot (the wheel
changes the zoom, moving the pointer pans, Escape or a second click resets), so the methods can
be compared pixel for pixel. The gallery holds the first ``gallery_limit`` images every row has
(``images`` chooses others).
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llbench import __version__, paths
from llbench.reports import figures
from llbench.reports.gallery import Gallery, collect_gallery
from llbench.reports.names import DECIMALS, metric_name
from llbench.reports.tables import TABLE_CSS, Table, dataset_label

GALLERY_LIMIT = 12

CSS = (
    TABLE_CSS
    + """
body{max-width:1400px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
nav a{margin-right:1em}
.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.figs img{max-width:100%;margin:.5em 0;display:block}
.gallery{margin:1em 0 2em}
.gallery .controls{display:flex;gap:.5em;align-items:center;margin:.5em 0}
.gallery .tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:.6em}
.tile{margin:0;border:1px solid #ddd;padding:.3em;background:#fafafa}
.tile .frame{overflow:hidden;position:relative;cursor:zoom-in;line-height:0}
.tile .frame.zoomed{cursor:zoom-out}
.tile img{width:100%;display:block;transform-origin:50% 50%;transition:transform .05s}
.tile .frame.zoomed img{image-rendering:pixelated}
.tile figcaption{font-size:.85em;margin-top:.3em}
.tile .scores{color:#555;font-size:.8em}
details pre{white-space:pre-wrap;font-size:.8em;background:#f4f4f4;padding:.5em}
table.prov td,table.prov th{text-align:left;font-size:.85em}
dl.defs dt{font-weight:bold;margin-top:.6em}dl.defs dd{margin-left:1em;font-size:.9em}
"""
)

SCRIPT = """
(function () {
  'use strict';
  function setupGallery(root) {
    var data = JSON.parse(root.querySelector('script.gallery-data').textContent);
    var tilesEl = root.querySelector('.tiles');
    var select = root.querySelector('select.image');
    var zoom = {on: false, x: 50, y: 50, scale: 4};
    var index = 0;
    function apply() {
      tilesEl.querySelectorAll('.frame').forEach(function (frame) {
        var img = frame.querySelector('img');
        frame.classList.toggle('zoomed', zoom.on);
        img.style.transformOrigin = zoom.x + '% ' + zoom.y + '%';
        img.style.transform = zoom.on ? 'scale(' + zoom.scale + ')' : 'none';
      });
      root.dataset.zoom = zoom.on ? String(zoom.scale) : '1';
    }
    function where(ev, frame) {
      var r = frame.getBoundingClientRect();
      zoom.x = Math.max(0, Math.min(100, 100 * (ev.clientX - r.left) / r.width));
      zoom.y = Math.max(0, Math.min(100, 100 * (ev.clientY - r.top) / r.height));
    }
    function show(i) {
      index = (i + data.images.length) % data.images.length;
      var item = data.images[index];
      select.value = String(index);
      tilesEl.innerHTML = '';
      item.tiles.forEach(function (t) {
        var fig = document.createElement('figure');
        fig.className = 'tile';
        var frame = document.createElement('div');
        frame.className = 'frame';
        var img = document.createElement('img');
        img.src = t.src;
        img.alt = t.title + ', ' + item.name;
        img.draggable = false;
        frame.appendChild(img);
        frame.addEventListener('click', function (ev) {
          if (zoom.on) { zoom.on = false; } else { where(ev, frame); zoom.on = true; }
          apply();
        });
        frame.addEventListener('mousemove', function (ev) {
          if (zoom.on) { where(ev, frame); apply(); }
        });
        frame.addEventListener('wheel', function (ev) {
          if (!zoom.on) { return; }
          ev.preventDefault();
          zoom.scale = Math.max(1.5, Math.min(16, zoom.scale * (ev.deltaY < 0 ? 1.25 : 0.8)));
          apply();
        }, {passive: false});
        var cap = document.createElement('figcaption');
        var name = document.createElement('div');
        name.textContent = t.title;
        cap.appendChild(name);
        if (t.scores) {
          var sc = document.createElement('div');
          sc.className = 'scores';
          sc.textContent = t.scores;
          cap.appendChild(sc);
        }
        fig.appendChild(frame);
        fig.appendChild(cap);
        tilesEl.appendChild(fig);
      });
      root.dataset.image = item.name;
      apply();
    }
    select.addEventListener('change', function () { show(parseInt(select.value, 10)); });
    root.querySelector('button.prev').addEventListener('click', function () { show(index - 1); });
    root.querySelector('button.next').addEventListener('click', function () { show(index + 1); });
    root.querySelector('button.reset').addEventListener('click', function () {
      zoom.on = false; zoom.scale = 4; apply();
    });
    document.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape' && zoom.on) { zoom.on = false; apply(); }
    });
    show(0);
  }
  document.querySelectorAll('section.gallery').forEach(setupGallery);
  document.body.dataset.ready = '1';
}());
"""


def write_html_report(
    rep: Any,
    path: str | Path | None,
    *,
    home: str | Path | None = None,
    images: Sequence[str] | None = None,
    embed: bool = True,
    gallery_limit: int | None = GALLERY_LIMIT,
    title: str | None = None,
) -> str:
    """Write the report of ``rep`` (a :class:`llbench.reports.report.Report`) to ``path`` and
    return the page (``path=None``: return it only; images are then embedded)."""
    target = Path(path) if path is not None else None
    if target is None:
        embed = True
    assets = None if embed else target.with_name(target.stem + "_files")
    if assets is not None:
        shutil.rmtree(assets, ignore_errors=True)
        assets.mkdir(parents=True, exist_ok=True)
    page = _Page(assets, target.parent if target is not None else None)
    table: Table = rep.table
    title = title or table.title or "llbench report"
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Written {time.strftime('%Y-%m-%d %H:%M')} by llbench {__version__} from "
        f"{html.escape(str(paths.home(home)))}.</p>",
        '<nav><a href="#results">Results</a><a href="#figures">Figures</a>'
        '<a href="#gallery">Images</a><a href="#provenance">Runs</a>'
        '<a href="#definitions">Definitions</a></nav>',
        '<h2 id="results">Results</h2>',
        table.to_html_table(),
    ]
    studies = _study_section(home)
    if studies:
        parts.append(studies)
    parts.append('<h2 id="figures">Figures</h2>')
    parts.append(_figures(rep, home, page))
    parts.append('<h2 id="gallery">Images</h2>')
    galleries = collect_gallery(
        rep.frame, home=home, images=images, limit=None if images else gallery_limit
    )
    if not galleries:
        parts.append("<p>No saved outputs to show.</p>")
    for i, g in enumerate(galleries):
        parts.append(_gallery(g, i, page, rep))
    parts.append('<h2 id="provenance">Runs</h2>')
    parts.append(_provenance(rep, home))
    parts.append('<h2 id="definitions">Definitions</h2>')
    parts.append(_definitions(rep))
    doc = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(parts)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(doc, encoding="utf-8")
    return doc


class _Page:
    """Where the page's images go: data URIs, or files in the assets folder."""

    def __init__(self, assets: Path | None, base: Path | None):
        self.assets = assets
        self.base = base
        self.n = 0

    def src(self, file: Path, hint: str) -> str:
        data = Path(file).read_bytes()
        suffix = Path(file).suffix.lower() or ".png"
        if self.assets is None:
            mime = {
                ".png": "image/png",
                ".jpg": "image/jpeg",
                ".jpeg": "image/jpeg",
                ".bmp": "image/bmp",
                ".svg": "image/svg+xml",
                ".tif": "image/tiff",
                ".tiff": "image/tiff",
            }.get(suffix, "application/octet-stream")
            return f"data:{mime};base64,{base64.b64encode(data).decode()}"
        self.n += 1
        name = f"{self.n:04d}-{_slug(hint)}{suffix}"
        (self.assets / name).write_bytes(data)
        return f"{self.assets.name}/{name}"


def _figures(rep: Any, home, page: _Page) -> str:
    from llbench.reports.plugininfo import directions

    out = ['<div class="figs">']
    frame = rep.frame
    if frame.empty:
        return "<p>No values to plot.</p>"
    dirs = directions()
    with tempfile.TemporaryDirectory(prefix="llbench-report-") as tmp:
        for metric in list(dict.fromkeys(m for _, m in rep.columns)):
            if metric not in set(frame["metric"]):
                continue
            p = figures.metric_bars(
                frame, metric, Path(tmp) / f"{metric}.svg", higher_better=dirs.get(metric)
            )
            out.append(
                f'<img alt="{html.escape(metric_name(metric))} by method" '
                f'src="{page.src(p, metric)}">'
            )
        from llbench.store.frames import training_log

        log = training_log(home=home)
        keys = _training_keys(rep)
        if not log.empty and keys:
            log = log[log["train_key"].isin(keys)]
            if not log.empty:
                p = figures.training_curves(log, Path(tmp) / "training.svg", smooth=5, labels=keys)
                out.append(f'<img alt="training curves" src="{page.src(p, "training")}">')
    out.append("</div>")
    return "\n".join(out)


def _training_keys(rep: Any) -> dict[str, str]:
    from llbench.reports.reportfigures import training_labels

    return training_labels(rep.rows)


def _gallery(g: Gallery, index: int, page: _Page, rep: Any) -> str:
    metrics = [m for d, m in rep.columns if d.split("[")[0] == g.dataset]
    items = []
    for image in g.images:
        tiles = []
        for title, file in g.tiles(image):
            scores = g.scores.get(title, {}).get(image, {})
            text = ", ".join(
                f"{metric_name(m)} {scores[m]:.{DECIMALS.get(m, 3)}f}"
                for m in (metrics or sorted(scores))
                if m in scores
            )
            tiles.append(
                {"title": title, "src": page.src(file, f"{title}-{image}"), "scores": text}
            )
        items.append({"name": image, "tiles": tiles})
    options = "".join(
        f'<option value="{i}">{html.escape(name)}</option>' for i, name in enumerate(g.images)
    )
    data = json.dumps({"dataset": g.dataset, "images": items}).replace("</", "<\\/")
    label = dataset_label(g.dataset if g.split == "test" else f"{g.dataset}[{g.split}]")
    return (
        f'<section class="gallery" id="gallery-{index}" data-dataset="{html.escape(g.dataset)}">'
        f"<h3>{html.escape(label)}</h3>"
        '<div class="controls"><button class="prev" type="button">&larr; previous</button>'
        f'<select class="image" aria-label="image">{options}</select>'
        '<button class="next" type="button">next &rarr;</button>'
        '<button class="reset" type="button">reset zoom</button>'
        "<span>click an image to zoom all of them into that spot; wheel: zoom; Esc: reset</span>"
        "</div>"
        '<div class="tiles"></div>'
        f'<script type="application/json" class="gallery-data">{data}</script></section>'
    )


def _provenance(rep: Any, home) -> str:
    from llbench.reports.runinfo import run_details

    rows = []
    for row in rep.rows:
        for r in getattr(row, "runs", []):
            if r.reference is not None and r.method not in ("input",):
                rows.append(
                    f"<tr><td>{html.escape(row.label)}</td><td>{html.escape(r.key)}</td>"
                    f"<td>{html.escape(dataset_label(r.column_dataset))}</td>"
                    "<td colspan=5>reference record (scores of the inputs / ground truth)</td></tr>"
                )
                continue
            try:
                info = run_details(r.key, home=home)
            except Exception:  # noqa: BLE001 - a run removed since: say so, keep the page
                continue
            w = info["weights"]
            weights = w["kind"]
            if w["kind"] == "trained" and w["training"]:
                weights = f"trained on {w['training'].get('dataset')}"
            if w["sha256"]:
                weights += f" (sha256 {str(w['sha256'])[:12]})"
            prov = info["provenance"]
            details = json.dumps(
                {
                    "config": info["config"],
                    "weights": w,
                    "scores": info["scores"],
                    "failures": info["failures"],
                    "provenance": prov,
                },
                indent=1,
                default=str,
            )
            rows.append(
                f"<tr><td>{html.escape(row.label)}</td><td><code>{html.escape(info['key'])}</code></td>"
                f"<td>{html.escape(dataset_label(r.column_dataset))}</td>"
                f"<td>{html.escape(str(info['seed']))}</td>"
                f"<td>{html.escape(str(info['preset'] or '-'))}</td>"
                f"<td>{html.escape(str(info['limit'] if info['limit'] is not None else '-'))}</td>"
                f"<td>{html.escape(weights)}</td>"
                f"<td>{html.escape(str(prov.get('device')))}; llbench {html.escape(str(prov.get('llbench')))}"
                f" ({html.escape(str(prov.get('git_sha') or 'no git'))})"
                f"<details><summary>everything</summary><pre>{html.escape(details)}</pre></details></td></tr>"
            )
    if not rows:
        return "<p>No runs.</p>"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("row", "run", "dataset", "seed", "preset", "limit", "weights", "provenance")
    )
    return (
        f'<table class="prov"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _definitions(rep: Any) -> str:
    from llbench.pluginhost.host import get_host
    from llbench.reports import statistics

    host = get_host()
    registry = host.registry("metric")
    out = ['<dl class="defs">']
    for metric in dict.fromkeys(m for _, m in rep.columns):
        if metric in registry:
            spec = registry.get(metric)
            arrow = "higher is better" if spec.higher_better else "lower is better"
            out.append(
                f"<dt>{html.escape(metric_name(metric))} (<code>{html.escape(metric)}</code>, "
                f"{arrow})</dt><dd>{html.escape(spec.definition)}</dd>"
            )
        else:
            out.append(f"<dt>{html.escape(metric)}</dt><dd>not registered here</dd>")
    doc = (statistics.__doc__ or "").strip()
    out.append(f"<dt>Statistics</dt><dd><pre>{html.escape(doc)}</pre></dd></dl>")
    return "\n".join(out)


def _study_section(home) -> str:
    try:
        from llbench.reports.studies import study_table
    except ImportError:  # pragma: no cover
        return ""
    tab = study_table(home)
    if tab is None:
        return ""
    return "<h2>User studies</h2>" + tab.to_html_table()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "img"
