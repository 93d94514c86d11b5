"""`llbench plugins`, `llbench list KIND` and its shortcuts `methods` and `metrics`."""

from __future__ import annotations

import json

import click
from rich.table import Table

from llbench.cli.common import console, state
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
        status = f"[red]error: {i.error}[/]" if i.error else "[green]ok[/]"
        t.add_row(i.name, provides or "-", i.distribution, i.version, i.module, status)
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
        console.print(f"no {kind} registered")
        return
    t = Table(title=f"llbench {kind}")
    for col in rows[0]:
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*[_cell(v) for v in r.values()])
    console.print(t)


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple, set, frozenset)):
        return ", ".join(map(str, v)) or "-"
    return str(v)


_shortcuts = []
for _kind in ("methods", "metrics"):

    def _make(kind: str):
        @click.command(kind, help=f"Describe registered {kind} (same as `llbench list {kind}`).")
        @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
        @click.pass_context
        def _cmd(ctx: click.Context, as_json: bool) -> None:
            ctx.invoke(list_cmd, kind=kind, as_json=as_json)

        return _cmd

    _shortcuts.append(_make(_kind))

COMMANDS = [plugins, list_cmd, *_shortcuts]
