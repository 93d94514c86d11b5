"""``llbench weights``: place, fetch and list the third-party weights of learned metrics and
segmenters (see :mod:`llbench.io.weights`)."""

from __future__ import annotations

import click
from rich.table import Table

from llbench.cli.common import ErrorHandlingGroup, console, escape
from llbench.io import weights as W


@click.group(cls=ErrorHandlingGroup)
def weights() -> None:
    """Import or fetch the weight files of learned metrics and segmenters."""


@weights.command("list")
@click.argument("names", nargs=-1)
def list_cmd(names: tuple[str, ...]) -> None:
    """List the known weight files, who needs them, and whether they are in place."""
    unknown = [n for n in names if n not in W.NEEDS]
    if unknown:
        raise W.WeightsError(
            f"unknown name(s) {', '.join(unknown)}; names with weights: "
            f"{', '.join(sorted(W.NEEDS))}"
        )
    t = Table(title="weight files")
    for col in ("file", "needed by", "status", "hash", "where", "source"):
        t.add_column(col, overflow="fold")
    for wf, users, present in W.status(names or None):
        t.add_row(
            wf.filename,
            ", ".join(users),
            "[green]present[/]" if present else "[red]missing[/]",
            wf.hash_status(),
            escape(str(wf.path())),
            escape(wf.url),
        )
    console.print(t)
    for name in names or sorted(W.PACKAGES):
        for mod, pip in W.missing_packages(name):
            console.print(
                f"{name} also needs the Python package {pip} (import {mod})", markup=False
            )


@weights.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def import_cmd(files: tuple[str, ...]) -> None:
    """Check FILES (hash, format) and copy them where pyiqa, torchvision and timm look."""
    for p in W.import_files(files):
        check = "hash verified" if p.verified else "no published hash; format checked"
        console.print(
            f"{p.file.filename} -> {p.dest} ({check}; sha256 {p.sha256})",
            highlight=False,
            markup=False,
        )


@weights.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Download again even if the file is present.")
def fetch_cmd(names: tuple[str, ...], force: bool) -> None:
    """Download the weights of metrics or segmenters NAMES (needs a network)."""
    for name in names:
        placed = W.fetch(name, force=force)
        if not placed:
            console.print(f"{name}: all files already present", markup=False)
        for p in placed:
            console.print(
                f"{name}: {p.file.filename} -> {p.dest} (sha256 {p.sha256})",
                highlight=False,
                markup=False,
            )
