"""State shared by the CLI's command groups (``ctx.obj``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from llbench import paths
from llbench.errors import LLBenchError

console = Console()
err_console = Console(stderr=True)


@dataclass
class CliState:
    """Options of the top-level ``llbench`` command, available to every subcommand."""

    home: Path
    data_root: Path

    @classmethod
    def from_options(cls, home: str | None, data_root: str | None) -> CliState:
        h = paths.home(home)
        d = paths.data_root(data_root, h)
        # Plugins get the folders explicitly: the host hands them to their hooks.
        from llbench.pluginhost.host import get_host

        get_host(h, d)
        return cls(h, d)


def state(ctx: click.Context) -> CliState:
    obj = ctx.find_object(CliState)
    if obj is None:  # a group used on its own (tests): fall back to the environment
        obj = CliState.from_options(None, None)
        ctx.obj = obj
    return obj


__all__ = ["CliState", "ErrorHandlingGroup", "console", "err_console", "escape", "fail", "state"]


def fail(message: str, code: int = 2) -> None:
    """Print an actionable error and exit without a traceback.

    The message is printed as plain text: brackets in it (``llbench[video]``, a config section
    ``[uss]``, a file name ``a[1].png``) are never read as rich markup.
    """
    err_console.print(Text.assemble(("error:", "bold red"), " ", str(message)), highlight=False)
    sys.exit(code)


#: Exit code of a command that stopped to wait for people (labels of a human-in-the-loop stage).
WAITING_EXIT_CODE = 3


class ErrorHandlingGroup(click.Group):
    """A click group that turns :class:`LLBenchError` into a one-line error and exit code 2,
    and :class:`~llbench.errors.WaitingForInput` into a ``waiting:`` note and exit code 3."""

    def invoke(self, ctx: click.Context):
        from llbench.errors import WaitingForInput

        try:
            return super().invoke(ctx)
        except WaitingForInput as exc:
            err_console.print(
                Text.assemble(("waiting:", "bold yellow"), " ", str(exc)), highlight=False
            )
            sys.exit(WAITING_EXIT_CODE)
        except LLBenchError as exc:
            fail(str(exc))


def split_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]
