"""`llbench plugins`, `llbench list KIND` and its shortcuts `methods` and `metrics`."""

from __future__ import annotations

import json

import click
from rich.table import Table

from llbench.cli.common import console, escape, state
from llbench.pluginhost.kinds import BY_PLURAL


# -- plugins and listings -----------------------------------------------------------------------
@click.command()
def plugins() -> None:
    """List every plugin: what it provides, where it came from, and any load error."""
    from llbench.pluginhost.host import get_host

    infos = get_host().plugins()
    t = Table(title="llbench plugins")
    for col in ("plugin", "provides", "distribution", "version", "module", "status"):
        t.add_column(col, overflow="fold")
    for i in infos:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in (i.provides or {}).items())
        status = f"[red]error: {escape(str(i.error))}[/]" if i.error else "[green]ok[/]"
        cells = (i.name, provides or "-", i.distribution, i.version, i.module)
        t.add_row(*(escape(str(c)) for c in cells), status)
    console.print(t)


@click.command("list")
@click.argument("kind", type=click.Choice(list(BY_PLURAL)))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, kind: str, as_json: bool) -> None:
    """Describe what is registered of KIND, with its metadata."""
    from llbench.pluginhost.listing import describe

    rows = describe(kind, data_root=state(ctx).data_root)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print(f"no {kind} registered", markup=False)
        return
    cells = [[_cell(v) for v in r.values()] for r in rows]
    hint = f"`llbench {kind} NAME` or " if kind == "methods" else ""
    console.print(_table(f"llbench {kind}", list(rows[0]), cells, f"{hint}`--json` for all"))


#: Free-text columns of listings: cut to one line (with an ellipsis) when the console is too
#: narrow, so every plugin stays one readable row; the full text is in ``--json``.
PROSE = frozenset({"summary", "paper", "source", "definition", "description", "module"})


def _table(title: str, columns: list[str], cells: list[list[str]], full: str) -> Table:
    """A listing table that fits the console: prose columns (:data:`PROSE`) are cut to one line
    each, sharing what the other columns leave at their natural width (at least 8 each; when
    the other columns do not fit either, they fold)."""
    prose = [k for k, col in enumerate(columns) if col in PROSE]
    natural = [max([len(col)] + [len(r[k]) for r in cells]) for k, col in enumerate(columns)]
    others = sum(n + 3 for k, n in enumerate(natural) if k not in prose)
    share = max(8, (console.width - 1 - others) // max(len(prose), 1) - 3)
    cut = any(natural[k] > share for k in prose)
    t = Table(
        title=title,
        caption=f"long text cut to fit {console.width} columns; {full}" if cut else None,
    )
    for k, col in enumerate(columns):
        if k in prose:
            t.add_column(col, overflow="ellipsis", no_wrap=True, max_width=share)
        else:
            t.add_column(col, overflow="fold")
    for row in cells:
        t.add_row(*row)
    return t


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple, set, frozenset)):
        return escape(", ".join(map(str, v))) or "-"
    return escape(str(v))


@click.command("methods")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def methods_cmd(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Describe registered methods (same as `llbench list methods`); with NAME, one method:
    its paper, default config (the paper's settings), presets and published numbers."""
    if name is None:
        ctx.invoke(list_cmd, kind="methods", as_json=as_json)
        return
    describe_method(name, as_json)


def describe_method(name: str, as_json: bool = False) -> None:
    from llbench.pluginhost.host import get_host

    host = get_host()
    registry = host.registry("method")
    match = [n for n in registry.names() if n.lower() == name.lower()]
    spec = registry.get(match[0] if match else name)  # unknown: an error with close matches
    from llbench.reports.published import load_published

    published = [v for v in load_published(host).values if v.method == spec.name]
    info = {
        "name": spec.name,
        "summary": spec.summary,
        "paper": spec.paper,
        "supervision": spec.supervision,
        "trains": spec.trains,
        "version": spec.version,
        "plugin": registry.origin(spec.name),
        "official_weights": (
            None
            if spec.official_weights is None
            else {
                "url": spec.official_weights.url,
                "sha256": spec.official_weights.sha256,
                "filename": spec.official_weights.filename,
            }
        ),
        "default_config": dict(spec.default_config),
        "presets": {k: dict(v) for k, v in spec.presets.items()},
        "published": [
            {
                "paper": v.paper,
                "table": v.table,
                "dataset": v.dataset,
                "metric": v.metric,
                "value": v.value,
            }
            for v in published
        ],
    }
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    console.print(f"[bold]{escape(spec.name)}[/]: {escape(spec.summary)}")
    for key in ("paper", "supervision", "trains", "version", "plugin"):
        console.print(f"  {key}: {escape(_cell(info[key]))}")
    if info["official_weights"]:
        w = info["official_weights"]
        console.print(f"  official weights: {escape(w['filename'])} from {escape(w['url'])}")
    console.print("[bold]default config[/] (the paper's settings; override keys with --config):")
    console.print(escape(_toml(info["default_config"]) or "  (none)"), highlight=False)
    for preset, over in info["presets"].items():
        console.print(f"[bold]preset {escape(preset)}[/] (--preset {escape(preset)}):")
        console.print(escape(_toml(over) or "  (no change)"), highlight=False)
    if published:
        papers = sorted({f"{v.paper} {v.table}".strip() for v in published})
        console.print(
            f"[bold]published numbers[/]: {len(published)} value(s) from {escape('; '.join(papers))}"
            " (llbench report --published)"
        )


def _toml(d, prefix: str = "") -> str:
    lines = []
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(_toml(v, f"{prefix}{k}."))
        else:
            lines.append(f"  {prefix}{k} = {json.dumps(v, default=str)}")
    return "\n".join(line for line in lines if line)


_shortcuts = [methods_cmd]
for _kind in ("metrics",):

    def _make(kind: str):
        @click.command(kind, help=f"Describe registered {kind} (same as `llbench list {kind}`).")
        @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
        @click.pass_context
        def _cmd(ctx: click.Context, as_json: bool) -> None:
            ctx.invoke(list_cmd, kind=kind, as_json=as_json)

        return _cmd

    _shortcuts.append(_make(_kind))

COMMANDS = [plugins, list_cmd, *_shortcuts]
