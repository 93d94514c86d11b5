"""Published numbers shipped by method plugins, and the layouts of the papers' tables.

A method plugin ships the numbers its paper printed through
:attr:`llbench.api.specs.MethodSpec.published`: a sequence of
:class:`~llbench.api.specs.PublishedValue`, or a TOML file. Without an explicit value, a file
named ``published.toml`` beside the module that defines the spec's ``build`` (or beside the
plugin's entry-point module) is read. The format (``docs/reports.md``)::

    paper = "SKF: Wu et al., Learning Semantic-Aware Knowledge Guidance ..., CVPR 2023"

    [[tables]]
    id = "table1"                        # preset name: <plugin>-table1
    name = "Table 1"
    caption = "Quantitative comparison on LOL and LOLv2-real"
    columns = ["lol/psnr", "lol/ssim_skimage", "lolv2-real/psnr"]   # dataset/metric
    approximate = ["lolv2-real/psnr"]    # optional: the metric is only the closest definition
    notes = ["..."]                      # optional, printed under the table
    rows = [                             # printed label, llbench method id, one value per column
      ["LIME", "lime", 16.76, 0.560, nan],
    ]

    [[values]]                           # optional single records outside any table layout
    method = "sgz"
    dataset = "lol"
    metric = "psnr"
    value = 20.60
    table = "Table 2"
    note = "ablation: all losses"

``nan`` marks an empty cell (``-`` in the paper). Values are kept as printed (percentages stay
percentages) and the metric named must then be on the same scale.
"""

from __future__ import annotations

import math
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llbench.api.specs import MethodSpec, PublishedValue
from llbench.errors import ConfigError
from llbench.pluginhost.host import PluginHost, get_host

FILENAME = "published.toml"


@dataclass
class PaperTable:
    """The layout of one printed table: rows (label, method) and columns (dataset, metric)."""

    plugin: str
    id: str
    name: str
    caption: str
    paper: str
    columns: list[tuple[str, str]]
    rows: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    approximate: set[tuple[str, str]] = field(default_factory=set)

    @property
    def preset(self) -> str:
        return f"{self.plugin}-{self.id}"


@dataclass
class Published:
    """Every published value and table layout the loaded method plugins ship."""

    values: list[PublishedValue] = field(default_factory=list)
    tables: dict[str, PaperTable] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def lookup(
        self,
        method: str,
        dataset: str,
        metric: str,
        paper: str | None = None,
        table: str | None = None,
    ) -> list[PublishedValue]:
        """The values printed for (method, dataset, metric), in file order (first table first),
        optionally only those of one paper and table."""
        m, d = method.lower(), dataset.lower()
        return [
            v
            for v in self.values
            if v.method == m
            and v.dataset == d
            and v.metric == metric
            and (paper is None or v.paper == paper)
            and (table is None or v.table == table)
        ]

    def papers_for(self, method: str) -> list[str]:
        seen: dict[str, None] = {}
        for v in self.values:
            if v.method == method.lower():
                seen.setdefault(v.paper, None)
        return list(seen)

    def table(self, preset: str) -> PaperTable:
        key = preset.lower()
        if key not in self.tables:
            known = ", ".join(sorted(self.tables)) or "none"
            raise ConfigError(f"unknown table preset {preset!r}; the plugins ship: {known}")
        return self.tables[key]


def load_published(host: PluginHost | None = None) -> Published:
    """Collect the published values and table layouts of every registered method plugin."""
    host = host or get_host()
    out = Published()
    seen_files: set[Path] = set()
    keys: set[tuple] = set()
    registry = host.registry("method")
    for spec in registry:
        origin = registry.origin(spec.name)
        if spec.published is not None and not isinstance(spec.published, str | Path):
            for v in spec.published:
                rec = _complete(v, spec)
                _add(out, rec, keys)
            continue
        for path in _candidate_files(spec, host, origin):
            if path in seen_files:
                continue
            seen_files.add(path)
            values, tables = read_published_file(path, plugin=origin)
            out.files.append(path)
            for rec in values:
                _add(out, rec, keys)
            for t in tables:
                out.tables.setdefault(t.preset, t)
    return out


def read_published_file(
    path: str | Path, *, plugin: str
) -> tuple[list[PublishedValue], list[PaperTable]]:
    """Parse one ``published.toml``; errors name the file and the entry."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read published numbers {path}: {exc}") from exc
    paper = str(data.get("paper", plugin))
    prefix = str(data.get("name", plugin)).lower()
    values: list[PublishedValue] = []
    tables: list[PaperTable] = []
    for i, t in enumerate(data.get("tables", [])):
        where = f"{path}: tables[{i}]"
        try:
            columns = [_column(c, where) for c in t["columns"]]
            tid = str(t["id"]).lower()
        except KeyError as exc:
            raise ConfigError(f"{where} lacks {exc.args[0]!r}") from None
        name = str(t.get("name", tid))
        approx = {_column(c, where) for c in t.get("approximate", [])}
        notes = dict(t.get("column_notes", {}))
        rows: list[tuple[str, str]] = []
        for j, row in enumerate(t.get("rows", [])):
            if len(row) != len(columns) + 2:
                raise ConfigError(
                    f"{where} row {j} ({row[:2]}) has {len(row) - 2} values for "
                    f"{len(columns)} columns"
                )
            label, method = str(row[0]), str(row[1]).lower()
            rows.append((label, method))
            for (dataset, metric), value in zip(columns, row[2:], strict=True):
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                values.append(
                    PublishedValue(
                        dataset=dataset,
                        metric=metric,
                        value=float(value),
                        method=method,
                        table=name,
                        paper=paper,
                        note=str(notes.get(f"{dataset}/{metric}", "")),
                        approximate=(dataset, metric) in approx,
                    )
                )
        tables.append(
            PaperTable(
                plugin=prefix,
                id=tid,
                name=name,
                caption=str(t.get("caption", "")),
                paper=paper,
                columns=columns,
                rows=rows,
                notes=[str(n) for n in t.get("notes", [])],
                approximate=approx,
            )
        )
    for i, v in enumerate(data.get("values", [])):
        try:
            values.append(
                PublishedValue(
                    dataset=str(v["dataset"]).lower(),
                    metric=str(v["metric"]),
                    value=float(v["value"]),
                    method=str(v["method"]).lower(),
                    table=str(v.get("table", "")),
                    paper=paper,
                    note=str(v.get("note", "")),
                    approximate=bool(v.get("approximate", False)),
                )
            )
        except KeyError as exc:
            raise ConfigError(f"{path}: values[{i}] lacks {exc.args[0]!r}") from None
    return values, tables


def published_frame(published: Published) -> Any:
    """The values as a DataFrame: method, dataset, metric, value, paper, table, note, approximate."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "method": v.method,
                "dataset": v.dataset,
                "metric": v.metric,
                "value": v.value,
                "paper": v.paper,
                "table": v.table,
                "note": v.note,
                "approximate": v.approximate,
            }
            for v in published.values
        ],
        columns=["method", "dataset", "metric", "value", "paper", "table", "note", "approximate"],
    )


# -- helpers -------------------------------------------------------------------------------------
def _candidate_files(spec: MethodSpec, host: PluginHost, origin: str) -> Iterable[Path]:
    if isinstance(spec.published, str | Path):
        base = _module_dir(getattr(spec.build, "__module__", None))
        p = Path(spec.published)
        if not p.is_absolute() and base is not None:
            p = base / p
        if not p.is_file():
            raise ConfigError(f"method {spec.name!r}: published numbers file {p} does not exist")
        yield p.resolve()
        return
    dirs: list[Path] = []
    for module in (getattr(spec.build, "__module__", None), _origin_module(host, origin)):
        d = _module_dir(module)
        if d is not None and d not in dirs:
            dirs.append(d)
    for d in dirs:
        p = d / FILENAME
        if p.is_file():
            yield p.resolve()


def _origin_module(host: PluginHost, origin: str) -> str | None:
    info = host.infos.get(origin)
    return info.module if info is not None else None


def _module_dir(module: str | None) -> Path | None:
    if not module:
        return None
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    return Path(file).resolve().parent if file else None


def _column(text: str, where: str) -> tuple[str, str]:
    if not isinstance(text, str) or text.count("/") != 1:
        raise ConfigError(f"{where}: column {text!r} must read 'dataset/metric'")
    d, m = text.split("/")
    return d.strip().lower(), m.strip()


def _complete(v: PublishedValue, spec: MethodSpec) -> PublishedValue:
    return replace(
        v,
        method=(v.method or spec.name).lower(),
        dataset=v.dataset.lower(),
        paper=v.paper or spec.paper or spec.name,
    )


def _add(out: Published, rec: PublishedValue, keys: set[tuple]) -> None:
    key = (rec.method, rec.dataset, rec.metric, rec.paper, rec.table)
    if key not in keys:
        keys.add(key)
        out.values.append(rec)


def columns_of(tables: Sequence[PaperTable]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for t in tables:
        out += [c for c in t.columns if c not in out]
    return out
