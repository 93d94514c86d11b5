"""Paper-style tables: methods as rows, (dataset, metric) as columns, best bold, second underlined.

:func:`build_table` turns the long results frame (``llbench.results()``) into a :class:`Table`;
:func:`llbench.reports.report.report_table` builds one from run identities with statistics
(:mod:`llbench.reports.rows`). The ``to_*`` methods render Markdown, LaTeX (booktabs), HTML, CSV
and a rich table for the terminal.

Conventions every format follows: reference rows (dark input, normal light) first and never
ranked; every value of a column has the same number of decimals (:mod:`llbench.reports.names`);
display names for datasets and metrics with an arrow for the direction (up: higher is better);
best value bold, second underlined; ``+- s`` is the standard deviation over seeds; ``[lo, hi]``
the 95 % bootstrap interval over images; ``▲`` / ``▼`` a value significantly better / worse than
the baseline row (paired Wilcoxon signed-rank test, Holm-corrected, p < 0.05); published rows
(``pub.``) give the paper's value and, in parentheses, measured minus published; ``≈`` marks a
published value whose protocol differs from the llbench metric of its column.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from llbench.reports.names import column_decimals, dataset_name, fmt, fmt_signed, metric_name
from llbench.store.database import REFERENCES

REFERENCE_NAMES = frozenset(REFERENCES.values())

FORMATS = ("md", "latex", "html", "csv")
MARKS = {"better": "\u25b2", "worse": "\u25bc"}
TEX_MARKS = {"better": "$^{\\blacktriangle}$", "worse": "$^{\\blacktriangledown}$"}


@dataclass
class Table:
    """A rows x (dataset, metric) grid of values with ranks per column.

    ``methods`` are the row labels in display order. The optional fields carry what a report
    knows beyond the values: per-cell statistics (``cells``: objects with ``ci``, ``std``,
    ``n_seeds``, ``mark``), the kind of each row (``kinds``: ``reference``, ``measured``,
    ``published``), differences of published rows to their measured row (``diffs``), cells
    whose published protocol differs (``approximate``), a caption and the baseline's label.
    """

    methods: list[str]
    columns: list[tuple[str, str]]
    values: dict[tuple[str, tuple[str, str]], float]
    higher_better: dict[str, bool | None]
    ranks: dict[tuple[str, tuple[str, str]], int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cells: dict[tuple[str, tuple[str, str]], Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    diffs: dict[tuple[str, tuple[str, str]], float] = field(default_factory=dict)
    approximate: set[tuple[str, tuple[str, str]]] = field(default_factory=set)
    caption: str = ""
    baseline: str | None = None
    show_intervals: bool = True
    title: str = ""

    # -- cells -------------------------------------------------------------------------------
    def value(self, method: str, col: tuple[str, str]) -> float | None:
        return self.values.get((method, col))

    def arrow(self, metric: str) -> str:
        hb = self.higher_better.get(metric)
        return "" if hb is None else ("\u2191" if hb else "\u2193")

    def kind(self, row: str) -> str:
        if row in self.kinds:
            return self.kinds[row]
        return "reference" if is_reference_row(row) else "measured"

    def decimals(self, col: tuple[str, str]) -> int:
        vals = [v for (m, c), v in self.values.items() if c == col]
        return column_decimals(col[1], vals)

    def cell(self, method: str, col: tuple[str, str]) -> str:
        """The cell's value with its seed deviation, the way every format prints it."""
        v = self.value(method, col)
        if v is None:
            return "-"
        d = self.decimals(col)
        text = fmt(v, d)
        if (method, col) in self.approximate:
            text = "\u2248" + text
        info = self.cells.get((method, col))
        std = getattr(info, "std", None)
        if std is not None and getattr(info, "n_seeds", 1) > 1:
            text += f" \u00b1 {fmt(std, d)}"
        return text

    def interval(self, method: str, col: tuple[str, str]) -> str:
        info = self.cells.get((method, col))
        ci = getattr(info, "ci", None)
        if not self.show_intervals or ci is None or any(map(math.isnan, ci)):
            return ""
        d = self.decimals(col)
        return f"[{fmt(ci[0], d)}, {fmt(ci[1], d)}]"

    def diff(self, method: str, col: tuple[str, str]) -> str:
        if (method, col) not in self.diffs:
            return ""
        return f"(\u0394 {fmt_signed(self.diffs[(method, col)], self.decimals(col))})"

    def mark(self, method: str, col: tuple[str, str]) -> str | None:
        return getattr(self.cells.get((method, col)), "mark", None)

    def header(self, col: tuple[str, str]) -> tuple[str, str]:
        return dataset_label(col[0]), f"{metric_name(col[1])}{self.arrow(col[1])}"

    def legend(self) -> list[str]:
        """The caption and the notes, as lines under (or, for LaTeX, in) the table."""
        lines = [self.caption] if self.caption else []
        return lines + list(self.notes)

    # -- renderers ---------------------------------------------------------------------------
    def to_markdown(self) -> str:
        head = ["Method"] + [" ".join(self.header(c)) for c in self.columns]
        lines = [
            "| " + " | ".join(_md(h) for h in head) + " |",
            "| " + " | ".join([":---"] + ["---:"] * len(self.columns)) + " |",
        ]
        for meth in self.methods:
            cells = [_md(meth)]
            for col in self.columns:
                text, rank = self.cell(meth, col), self.ranks.get((meth, col))
                text = f"**{text}**" if rank == 1 else f"<u>{text}</u>" if rank == 2 else text
                mark = self.mark(meth, col)
                if mark:
                    text += MARKS[mark]
                extra = " ".join(x for x in (self.interval(meth, col), self.diff(meth, col)) if x)
                cells.append(_md(text + (" " + extra if extra else "")))
            lines.append("| " + " | ".join(cells) + " |")
        legend = self.legend()
        return "\n".join(lines) + "\n" + "".join(f"\n{_md_text(n)}\n" for n in legend)

    def to_latex(self, caption: str | None = None, label: str | None = None) -> str:
        datasets = _runs(d for d, _ in self.columns)
        spec = "l" + "c" * len(self.columns)
        caption = caption if caption is not None else self.caption
        out = ["\\begin{table}[t]", "\\centering"]
        if caption:
            out.append(f"\\caption{{{_tex(caption)}}}")
        if label:
            out.append(f"\\label{{{label}}}")
        out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
        top, rules, start = ["Method"], [], 2
        for d, n in datasets:
            name = _tex(dataset_label(d))
            top.append(f"\\multicolumn{{{n}}}{{c}}{{{name}}}" if n > 1 else name)
            rules.append(f"\\cmidrule(lr){{{start}-{start + n - 1}}}")
            start += n
        out.append(" & ".join(top) + " \\\\")
        out.append(" ".join(rules))
        arrows = {"\u2191": "$\\uparrow$", "\u2193": "$\\downarrow$", "": ""}
        out.append(
            " & ".join(
                [""] + [f"{_tex(metric_name(m))}{arrows[self.arrow(m)]}" for _, m in self.columns]
            )
            + " \\\\"
        )
        out.append("\\midrule")
        previous = None
        for meth in self.methods:
            kind = self.kind(meth)
            if previous == "reference" and kind != "reference":
                out.append("\\midrule")
            previous = kind
            cells = [_tex(meth) if kind != "published" else f"\\quad\\textit{{{_tex(meth)}}}"]
            for col in self.columns:
                text = _tex(self.cell(meth, col)).replace("\u00b1", "$\\pm$")
                text = text.replace("\u2248", "$\\approx$")
                rank = self.ranks.get((meth, col))
                if rank == 1:
                    text = f"\\textbf{{{text}}}"
                elif rank == 2:
                    text = f"\\underline{{{text}}}"
                mark = self.mark(meth, col)
                if mark:
                    text += TEX_MARKS[mark]
                extra = " ".join(x for x in (self.interval(meth, col), self.diff(meth, col)) if x)
                if extra:
                    extra = _tex(extra).replace("\u0394", "$\\Delta$")
                    text += f"\\,{{\\scriptsize {extra}}}"
                if kind == "published" and text != "-":
                    text = f"\\textit{{{text}}}"
                cells.append(text)
            out.append(" & ".join(cells) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}"]
        if self.notes:
            out.append("\\par\\smallskip{\\footnotesize " + _tex(" ".join(self.notes)) + "}")
        out.append("\\end{table}")
        return "\n".join(out) + "\n"

    def to_html_table(self) -> str:
        """The ``<table>`` element alone (for the HTML report)."""
        datasets = _runs(d for d, _ in self.columns)
        th = "".join(f'<th colspan="{n}">{html.escape(dataset_label(d))}</th>' for d, n in datasets)
        th2 = "".join(f"<th>{html.escape(self.header(c)[1])}</th>" for c in self.columns)
        body = []
        for meth in self.methods:
            kind = self.kind(meth)
            cells = [f'<th scope="row">{html.escape(meth)}</th>']
            for col in self.columns:
                text, rank = html.escape(self.cell(meth, col)), self.ranks.get((meth, col))
                if rank == 1:
                    text = f"<b>{text}</b>"
                elif rank == 2:
                    text = f"<u>{text}</u>"
                mark = self.mark(meth, col)
                if mark:
                    title = f"significantly {mark} than the baseline"
                    text += f'<span class="sig" title="{title}">{MARKS[mark]}</span>'
                ci = self.interval(meth, col)
                if ci:
                    text += f'<br><small class="ci">{html.escape(ci)}</small>'
                dif = self.diff(meth, col)
                if dif:
                    text += f' <small class="diff">{html.escape(dif)}</small>'
                cells.append(f"<td>{text}</td>")
            body.append(f'<tr class="{kind}">' + "".join(cells) + "</tr>")
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in self.notes)
        return (
            f'<div class="results"><table>{caption}<thead><tr><th rowspan="2">Method</th>{th}</tr>'
            f"<tr>{th2}</tr></thead><tbody>{''.join(body)}</tbody></table>{notes}</div>"
        )

    def to_html(self, title: str = "llbench results") -> str:
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{TABLE_CSS}</style></head><body>"
            f"{self.to_html_table()}</body></html>\n"
        )

    def to_frame(self) -> pd.DataFrame:
        """Values (and, where known, their statistics) with ids as column names."""
        records = []
        for m in self.methods:
            rec: dict[str, Any] = {"method": m}
            for c in self.columns:
                name = f"{c[0]}/{c[1]}"
                rec[name] = self.value(m, c)
            records.append(rec)
        frame = pd.DataFrame.from_records(
            records, columns=["method"] + [f"{d}/{m}" for d, m in self.columns]
        )
        if self.cells or self.diffs:
            for c in self.columns:
                name = f"{c[0]}/{c[1]}"
                for stat in ("ci_low", "ci_high", "std", "n_seeds", "n_images", "p_holm", "diff"):
                    frame[f"{name}:{stat}"] = [self._stat(m, c, stat) for m in self.methods]
            frame["kind"] = [self.kind(m) for m in self.methods]
        return frame.set_index("method")

    def _stat(self, m: str, c: tuple[str, str], stat: str) -> float | None:
        if stat == "diff":
            return self.diffs.get((m, c))
        info = self.cells.get((m, c))
        if info is None:
            return None
        if stat in ("ci_low", "ci_high"):
            ci = getattr(info, "ci", None)
            return None if ci is None else ci[0 if stat == "ci_low" else 1]
        if stat == "p_holm":
            paired = getattr(info, "paired", None)
            return None if paired is None else paired.p_holm
        return getattr(info, stat, None)

    def to_csv(self) -> str:
        frame = self.to_frame()
        return frame.to_csv()

    def to_rich(self):
        from rich.markup import escape
        from rich.table import Table as RichTable

        t = RichTable(show_lines=False, caption="\n".join(self.legend()) or None)
        t.add_column("Method", style="bold")
        for c in self.columns:
            d, m = self.header(c)
            t.add_column(escape(f"{d}\n{m}"), justify="right")
        for meth in self.methods:
            style = "dim" if self.kind(meth) in ("reference", "published") else None
            row = [escape(meth)]
            for col in self.columns:
                text, rank = escape(self.cell(meth, col)), self.ranks.get((meth, col))
                text = (
                    f"[bold]{text}[/]"
                    if rank == 1
                    else f"[underline]{text}[/]"
                    if rank == 2
                    else text
                )
                mark = self.mark(meth, col)
                if mark:
                    text += MARKS[mark]
                extra = " ".join(x for x in (self.interval(meth, col), self.diff(meth, col)) if x)
                if extra:
                    text += f"\n[dim]{escape(extra)}[/]"
                row.append(text)
            t.add_row(*row, style=style)
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


TABLE_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em}"
    ".results table{border-collapse:collapse;border-top:2px solid #333;border-bottom:2px solid #333}"
    ".results table th,.results table td{padding:.3em .8em;text-align:right;vertical-align:top}"
    ".results table thead th{border-bottom:1px solid #333;text-align:center}"
    ".results table tbody th{text-align:left;font-weight:normal}"
    ".results table tr.reference{color:#555}.results table tr.reference:last-of-type th{}"
    ".results table tr.published{color:#555;font-style:italic}"
    ".results table caption{caption-side:bottom;text-align:left;padding-top:.5em;font-size:.9em}"
    ".ci,.diff{color:#666}.sig{color:#b00;margin-left:.15em}"
)


def dataset_label(column_dataset: str) -> str:
    """Display name of a column's dataset (``name[split]`` for a split other than test)."""
    base, _, split = column_dataset.partition("[")
    return dataset_name(base) + (f" ({split.rstrip(']')})" if split else "")


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _md_text(text: str) -> str:
    return text


def build_table(
    frame: pd.DataFrame,
    higher_better: Mapping[str, bool | None],
    *,
    method_order: Sequence[str] | None = None,
    metric_order: Sequence[str] | None = None,
    runs: pd.DataFrame | None = None,
) -> Table:
    """Build a :class:`Table` from the long frame of :func:`llbench.results`.

    ``runs`` (optional, the stored runs) makes the failure notes exact (:func:`failure_notes`).

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
        mark_best_two(table, col, present, hb)
    table.notes.extend(failure_notes(frame, runs))
    return table


def mark_best_two(
    table: Table, col: tuple[str, str], present: list[tuple[str, float]], higher_better: bool
) -> None:
    """Rank 1 (bold) and 2 (underlined) in ``table.ranks`` for the rows of ``present``
    (``(row, value)`` pairs of column ``col``) holding the best and second-best distinct value
    (ties share a rank; values equal to 10 decimals are ties)."""
    distinct = sorted({round(v, 10) for _, v in present}, reverse=higher_better)
    for name, v in present:
        rank = distinct.index(round(v, 10)) + 1
        if rank <= 2:
            table.ranks[(name, col)] = rank


# -- notes on failed images (issue 20: kept apart from the table layout) -------------------------
def failure_notes(frame: pd.DataFrame, runs: pd.DataFrame | None = None) -> list[str]:
    """Notes on the failures behind a table's means.

    ``runs`` (:func:`llbench.store.frames.runs_frame`: ``n_images``, ``done`` = images enhanced,
    ``n_failed`` = images with any error) tells apart images that failed entirely (excluded from
    every mean) from images on which only some metrics failed (excluded from those metrics'
    means only), and names finished runs in which every image failed, which have no scores and
    so no row. Without ``runs`` the frame's ``n_failed`` gives one note per method and dataset.
    """
    notes: list[str] = []
    if runs is None or runs.empty or "done" not in runs:
        if "n_failed" not in frame:
            return notes
        counts = frame[["method", "dataset", "n_failed"]].dropna().drop_duplicates()
        for r in counts[counts["n_failed"].astype(int) > 0].itertuples():
            notes.append(
                f"{r.method} on {r.dataset}: {int(r.n_failed)} image(s) had errors; an image "
                "that failed is excluded from every mean, one on which only some metrics failed "
                "from those metrics' means."
            )
        return notes
    finished = runs[runs["status"] == "finished"]
    shown = finished[finished["key"].isin(set(frame.get("run_key", [])))]
    for r in shown.itertuples():
        n = int(r.n_images or 0)
        whole = max(0, n - int(r.done or 0))
        partial = max(0, int(r.n_failed or 0) - whole)
        if whole:
            notes.append(
                f"{r.method} on {r.dataset}: {whole} of {n} image(s) failed and are excluded "
                "from the means."
            )
        if partial:
            notes.append(
                f"{r.method} on {r.dataset}: a metric failed on {partial} image(s); each is "
                "excluded only from the means of the metrics that failed on it."
            )
    present = set(zip(frame.get("method", []), frame.get("dataset", []), strict=True))
    empty = finished[(finished["done"] == 0) & (finished["n_images"].fillna(0) > 0)]
    for r in empty.drop_duplicates(["method", "dataset"], keep="last").itertuples():
        if (r.method, r.dataset) not in present:
            notes.append(
                f"{r.method} on {r.dataset}: all {int(r.n_images)} image(s) failed (run "
                f"{r.key}), so it has no scores; see `llbench export` or the run's errors."
            )
    return notes


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
    "\u2191": "$\\uparrow$",
    "\u2193": "$\\downarrow$",
    "\u00b1": "$\\pm$",
    "\u25b2": "$\\blacktriangle$",
    "\u25bc": "$\\blacktriangledown$",
    "\u0394": "$\\Delta$",
    "\u2248": "$\\approx$",
}


def _tex(s: str) -> str:
    return "".join(_TEX.get(c, c) for c in s)
