"""The ``llbench`` command line: a thin layer over the Python API."""

from __future__ import annotations

import importlib

import click

from llbench import __version__
from llbench.cli.common import CliState, ErrorHandlingGroup, fail
from llbench.errors import LLBenchError

# Command groups that live in their own modules, imported only when used.
LAZY_GROUPS = {
    "datasets": ("llbench.cli.datasets", "datasets", "List, fetch, verify and add datasets."),
    "study": ("llbench.cli.study", "study", "Run human preference studies (2AFC, MOS)."),
    "weights": ("llbench.cli.weights", "weights", "Import or fetch weights of learned metrics."),
    "segmenters": ("llbench.cli.segmenters", "segmenters", "List and train segmenters."),
}


class RootGroup(ErrorHandlingGroup):
    """Adds the lazily imported groups (one that cannot import says why instead of vanishing)
    and the commands plugins add through the ``register_commands`` hook."""

    _plugin_commands_added = False

    def _add_plugin_commands(self) -> None:
        if not self._plugin_commands_added:
            self._plugin_commands_added = True
            from llbench.pluginhost.host import get_host

            get_host().add_commands(self)

    def list_commands(self, ctx):
        self._add_plugin_commands()
        return sorted(set(super().list_commands(ctx)) | set(LAZY_GROUPS))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is None and name not in LAZY_GROUPS:
            self._add_plugin_commands()
            cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_GROUPS:
            return cmd
        module, attr, help_text = LAZY_GROUPS[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except Exception as exc:  # noqa: BLE001 - report, don't crash the whole CLI
            error = f"{type(exc).__name__}: {exc}"

            @click.command(name=name, help=f"{help_text} (unavailable: {error})")
            def broken():
                fail(f"`llbench {name}` cannot load: {error}")

            return broken


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llbench")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="LLBENCH_HOME",
    help="llbench home: database, run outputs, weights (default ~/.llbench).",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    envvar="LLBENCH_DATA",
    help="Folder holding one folder per dataset (default <home>/data).",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None, data_root: str | None) -> None:
    """Benchmark low-light image enhancement methods: run, score, report, study."""
    ctx.obj = CliState.from_options(home, data_root)


def _add_builtin_commands(group: click.Group) -> None:
    from llbench.cli import listing, results, run

    for module in (listing, run, results):
        for command in module.COMMANDS:
            group.add_command(command)


_add_builtin_commands(cli)


def main() -> None:
    try:
        cli(prog_name="llbench")
    except LLBenchError as exc:  # raised outside a command's invoke
        fail(str(exc))


if __name__ == "__main__":  # pragma: no cover
    main()
