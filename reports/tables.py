"""Paper-style tables: methods as rows, (dataset, metric) as columns, best bold, second underlined.

:func:`build_table` turns the long results frame (``llbench.results()``) into a :class:`Table`;
its ``to_*`` methods render Markdown, LaTeX (booktabs), HTML, CSV and a rich table for the
terminal. Directions come from the metric specs (arrow up: higher is better).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from llbench.store.database import REFERENCES

REFERENCE_NAMES = frozenset(REFERENCES.values())

FORMATS = ("md", "latex", "html", "csv")


@dataclass
class Table:
    """A methods x (dataset, metric) grid of values with ranks per column."""

    methods: list[str]
    columns: list[tuple[str, str]]
    values: dict[tuple[str, tuple[str, str]], float]
    higher_better: dict[str, bool | None]
    ranks: dict[tuple[str, tuple[str, str]], int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def value(self, method: str, col: tuple[str, str]) -> float | None:
        return self.values.get((method, col))

    def arrow(self, metric: str) -> str:
        hb = self.higher_better.get(metric)
        return "" if hb is None else ("\u2191" if hb else "\u2193")

    def cell(self, method: str, col: tuple[str, str]) -> str:
        v = self.value(method, col)
        return "-" if v is None else format_value(v)

    # -- renderers ---------------------------------------------------------------------------
    def to_markdown(self) -> str:
        head = ["Method"] + [f"{d} {m}{self.arrow(m)}" for d, m in self.columns]
        lines = [
            "| " + " | ".join(head) + " |",
            "| " + " | ".join([":---"] + ["---:"] * len(self.columns)) + " |",
        ]
        for meth in self.methods:
            cells = [meth]
            for col in self.columns:
                text, rank = self.cell(meth, col), self.ranks.get((meth, col))
                cells.append(
                    f"**{text}**" if rank == 1 else f"<u>{text}</u>" if rank == 2 else text
                )
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines + [f"\n{n}" for n in self.notes]) + "\n"

    def to_latex(self, caption: str | None = None, label: str | None = None) -> str:
        datasets = _runs(d for d, _ in self.columns)
        spec = "l" + "c" * len(self.columns)
        out = ["\\begin{table}[t]", "\\centering"]
        if caption:
            out.append(f"\\caption{{{_tex(caption)}}}")
        if label:
            out.append(f"\\label{{{label}}}")
        out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
        top, rules, start = ["Method"], [], 2
        for d, n in datasets:
            top.append(f"\\multicolumn{{{n}}}{{c}}{{{_tex(d)}}}" if n > 1 else _tex(d))
            rules.append(f"\\cmidrule(lr){{{start}-{start + n - 1}}}")
            start += n
        out.append(" & ".join(top) + " \\\\")
        out.append(" ".join(rules))
        arrows = {"\u2191": "$\\uparrow$", "\u2193": "$\\downarrow$", "": ""}
        out.append(
            " & ".join([""] + [f"{_tex(m)}{arrows[self.arrow(m)]}" for _, m in self.columns])
            + " \\\\"
        )
        out.append("\\midrule")
        for meth in self.methods:
            cells = [_tex(meth)]
            for col in self.columns:
                text, rank = self.cell(meth, col), self.ranks.get((meth, col))
                cells.append(
                    f"\\textbf{{{text}}}"
                    if rank == 1
                    else f"\\underline{{{text}}}"
                    if rank == 2
                    else text
                )
            out.append(" & ".join(cells) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        return "\n".join(out) + "\n"

    def to_html(self, title: str = "llbench results") -> str:
        datasets = _runs(d for d, _ in self.columns)
        th = "".join(f'<th colspan="{n}">{html.escape(d)}</th>' for d, n in datasets)
        th2 = "".join(f"<th>{html.escape(m)}{self.arrow(m)}</th>" for _, m in self.columns)
        body = []
        for meth in self.methods:
            cells = [f'<th scope="row">{html.escape(meth)}</th>']
            for col in self.columns:
                text, rank = html.escape(self.cell(meth, col)), self.ranks.get((meth, col))
                if rank == 1:
                    text = f"<b>{text}</b>"
                elif rank == 2:
                    text = f"<u>{text}</u>"
                cells.append(f"<td>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em}"
            "table{border-collapse:collapse}th,td{padding:.3em .8em;text-align:right}"
            "thead th{border-bottom:1px solid #333;text-align:center}"
            "tbody th{text-align:left}table{border-top:2px solid #333;border-bottom:2px solid #333}"
            "</style></head><body>"
            f'<table><thead><tr><th rowspan="2">Method</th>{th}</tr><tr>{th2}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{notes}</body></html>\n"
        )

    def to_csv(self) -> str:
        frame = pd.DataFrame(
            [[self.value(m, c) for c in self.columns] for m in self.methods],
            index=pd.Index(self.methods, name="method"),
            columns=[f"{d}/{m}" for d, m in self.columns],
        )
        return frame.to_csv()

    def to_rich(self):
        from rich.table import Table as RichTable

        t = RichTable(show_lines=False)
        t.add_column("Method", style="bold")
        for d, m in self.columns:
            t.add_column(f"{d}\n{m}{self.arrow(m)}", justify="right")
        for meth in self.methods:
            row = [meth]
            for col in self.columns:
                text, rank = self.cell(meth, col), self.ranks.get((meth, col))
                row.append(
                    f"[bold]{text}[/]"
                    if rank == 1
                    else f"[underline]{text}[/]"
                    if rank == 2
                    else text
                )
            t.add_row(*row)
        return t

    def render(self, fmt: str) -> str:
        if fmt == "md":
            return self.to_markdown()
        if fmt == "latex":
            return self.to_latex()
        if fmt == "html":
            return self.to_html()
        if fmt == "csv":
            return self.to_csv()
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def build_table(
    frame: pd.DataFrame,
    higher_better: Mapping[str, bool | None],
    *,
    method_order: Sequence[str] | None = None,
    metric_order: Sequence[str] | None = None,
) -> Table:
    """Build a :class:`Table` from the long frame of :func:`llbench.results`.

    Ranks: in each column, the best value gets rank 1 (bold) and the second best rank 2
    (underlined) by the metric's direction; ties share a rank; metrics without a known direction
    and columns with a single method are not ranked.
    """
    frame = frame.dropna(subset=["value"])
    methods = list(method_order or [])
    methods += [m for m in _unique(frame["method"]) if m not in methods]
    methods.sort(key=lambda m: not is_reference_row(m))  # bounds first, order kept otherwise
    metric_rank = {m: i for i, m in enumerate(metric_order or [])}
    cols = sorted(
        {(d, m) for d, m in zip(frame["dataset"], frame["metric"], strict=True)},
        key=lambda c: (c[0], metric_rank.get(c[1], len(metric_rank)), c[1]),
    )
    values = {(r.method, (r.dataset, r.metric)): float(r.value) for r in frame.itertuples()}
    table = Table(
        [m for m in methods if any((m, c) in values for c in cols)],
        cols,
        values,
        dict(higher_better),
    )
    for col in cols:
        hb = higher_better.get(col[1])
        present = [
            (m, values[(m, col)])
            for m in table.methods
            if (m, col) in values and not math.isnan(values[(m, col)]) and not is_reference_row(m)
        ]
        if hb is None or len(present) < 2:
            continue
        distinct = sorted({round(v, 10) for _, v in present}, reverse=hb)
        for m, v in present:
            r = distinct.index(round(v, 10)) + 1
            if r <= 2:
                table.ranks[(m, col)] = r
    if frame["n_failed"].fillna(0).astype(int).gt(0).any() if "n_failed" in frame else False:
        bad = frame[frame["n_failed"].fillna(0).astype(int) > 0][["method", "dataset", "n_failed"]]
        for r in bad.drop_duplicates().itertuples():
            table.notes.append(
                f"{r.method} on {r.dataset}: {r.n_failed} image(s) failed and are "
                "excluded from the means."
            )
    return table


def is_reference_row(method: str) -> bool:
    """Reference rows (:data:`llbench.store.REFERENCES`: the dark input and the normal-light
    images) are bounds shown above the methods, never ranked entries."""
    return method in REFERENCE_NAMES


def format_value(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 10:
        return f"{v:.2f}"
    if a >= 0.01 or a == 0:
        return f"{v:.3f}"
    return f"{v:.2e}"


def _unique(values) -> list:
    seen: dict = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def _runs(items) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for it in items:
        if out and out[-1][0] == it:
            out[-1] = (it, out[-1][1] + 1)
        else:
            out.append((it, 1))
    return out


_TEX = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "$": "\\$",
    "#": "\\#",
    "_": "\\_",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
}


def _tex(s: str) -> str:
    return "".join(_TEX.get(c, c) for c in s)
