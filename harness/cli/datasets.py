"""``llbench datasets``: list, fetch, verify, show and add datasets.

* ``llbench datasets``: every registered dataset with its status: present (verified against the
  recorded manifest), unverified, incomplete (what is missing) or absent (where to put it and
  where to get it).
* ``llbench datasets fetch NAME [--archive FILE]``: download (progress bar, resumable, sha256
  checked), extract safely, generate derived data and record the manifest; without a direct
  download, print the exact manual steps and exit with status 2.
* ``llbench datasets verify NAME [--update]``: decode every image, report conversions and damaged
  files, compare with the manifest (and record it when there is none).
* ``llbench datasets show NAME``: details, splits, manifest hashes and where to get it.
* ``llbench datasets add NAME PATH --layout paired|unpaired`` / ``remove NAME``: use your own
  folder as a dataset without writing a plugin (stored in ``<home>/datasets.json``).

The data root is ``--data-root`` / ``LLBENCH_DATA`` (default ``<home>/data``); downloads are
kept in ``<cache>/downloads/<dataset>/`` (``LLBENCH_CACHE``, default ``<home>/cache``).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from llbench import paths
from llbench.api.datasets import Dataset, DatasetStatus
from llbench.cli.common import ErrorHandlingGroup, console, err_console, state
from llbench.errors import DatasetError, LLBenchError
from llbench.pluginhost.host import get_host, reset_host

STATE_STYLE = {
    "present": "green",
    "unverified": "yellow",
    "incomplete": "yellow",
    "absent": "red",
    "error": "red",
}
STATE_LABEL = {
    "present": "present, verified",
    "unverified": "present, unverified",
    "incomplete": "incomplete",
    "absent": "absent",
    "error": "error",
}


def _build(name: str, data_root: Path) -> tuple[object, Dataset]:
    spec = get_host().dataset(name)
    return spec, spec.build(data_root)


def _status(ds: Dataset) -> DatasetStatus:
    try:
        return ds.status()
    except LLBenchError as exc:
        return DatasetStatus("error", str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the listing
        return DatasetStatus("error", f"{type(exc).__name__}: {exc}")


def _label(ds: object, status: DatasetStatus) -> str:
    """``present`` means verified only for datasets that keep manifests (llbench's own)."""
    if status.state == "present" and not hasattr(ds, "load_manifest"):
        return "present"
    return STATE_LABEL.get(status.state, status.state)


def _kind(spec) -> str:
    kind = "paired" if spec.paired else "unpaired"
    return kind + (" + masks" if spec.masks else "")


@click.group("datasets", cls=ErrorHandlingGroup, invoke_without_command=True)
@click.pass_context
def datasets(ctx: click.Context) -> None:
    """List datasets and their status, or fetch, verify, show and add them."""
    if ctx.invoked_subcommand is not None:
        return
    st = state(ctx)
    registry = get_host().registry("dataset")
    table = Table(title=f"datasets in {st.data_root}", title_justify="left", expand=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("kind", no_wrap=True)
    table.add_column("splits", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for spec in registry:
        ds = None
        try:
            ds = spec.build(st.data_root)
            status = _status(ds)
        except Exception as exc:  # noqa: BLE001
            status = DatasetStatus("error", f"{type(exc).__name__}: {exc}")
        splits = ", ".join(
            f"{s} {status.splits[s]}" if s in status.splits else f"{s} -" for s in spec.splits
        )
        style = STATE_STYLE.get(status.state, "")
        label = _label(ds, status)
        table.add_row(
            escape(spec.name),
            _kind(spec),
            splits,
            f"[{style}]{label}[/]" if style else escape(label),
            escape(status.detail),
        )
    console.print(table)
    console.print(
        "`llbench datasets fetch NAME` downloads a dataset or prints how to get it; "
        "`llbench datasets show NAME` gives the details.",
        highlight=False,
        markup=False,
    )


@datasets.command("fetch")
@click.argument("name")
@click.option(
    "--archive",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An archive you downloaded by hand (zip or tar): extract it instead of downloading.",
)
@click.option("--force", is_flag=True, help="Download and extract even if the data is present.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Network timeout in seconds."
)
@click.pass_context
def fetch_cmd(
    ctx: click.Context,
    name: str,
    archive: Path | None,
    force: bool,
    no_progress: bool,
    timeout: float,
) -> None:
    """Download NAME (or take --archive), extract it safely, verify it and record its manifest."""
    st = state(ctx)
    spec, ds = _build(name, st.data_root)
    if not hasattr(ds, "fetch"):  # a plugin dataset without downloads: let it prepare itself
        ds.prepare()
        status = _status(ds)
        console.print(
            f"{name}: {_label(ds, status)}. {status.detail} (source: {spec.source or 'not given'})",
            markup=False,
            highlight=False,
        )
        if status.state in ("absent", "error"):
            ctx.exit(2)
        return
    cache = paths.cache_dir(st.home)
    result = ds.fetch(
        cache, archive=archive, progress=not no_progress, timeout=timeout, force=force
    )
    for msg in result.messages:
        console.print(msg, highlight=False, markup=False)
    _print_report(result.report)
    if not result.report.ok and result.report.problems:
        ctx.exit(1)


@datasets.command("verify")
@click.argument("name")
@click.option(
    "--update", is_flag=True, help="Record the current files as the manifest even if they changed."
)
@click.option("--no-images", is_flag=True, help="Hash files only; do not decode every image.")
@click.pass_context
def verify_cmd(ctx: click.Context, name: str, update: bool, no_images: bool) -> None:
    """Check NAME's files against its manifest (and decode every image)."""
    st = state(ctx)
    _spec, ds = _build(name, st.data_root)
    if not hasattr(ds, "verify"):
        status = _status(ds)
        console.print(f"{name}: {status.state} {status.detail}", highlight=False, markup=False)
        return
    report = ds.verify(update=update, check_images=not no_images)
    _print_report(report)
    if report.problems or (report.differs and not update):
        ctx.exit(1)


def _print_report(report) -> None:
    out = console
    counts = ", ".join(f"{s}: {n}" for s, n in report.counts.items()) or "none"
    out.print(f"{report.dataset}: images per split: {counts}", highlight=False, markup=False)
    for split, why in report.missing_splits.items():
        out.print(f"  split {split} is not here: {why}", highlight=False, markup=False)
    for note, files in sorted(report.notes.items()):
        example = ", ".join(files[:3]) + (f" (and {len(files) - 3} more)" if len(files) > 3 else "")
        out.print(f"  {note} ({len(files)} file(s)): {example}", markup=False, highlight=False)
    if report.differs:
        out.print(
            f"  differs from the manifest recorded {report.compared_with}: "
            f"{len(report.changed)} changed, {len(report.missing_files)} missing, "
            f"{len(report.new_files)} new",
            markup=False,
        )
        for label, items in (
            ("changed", report.changed),
            ("missing", report.missing_files),
            ("new", report.new_files),
        ):
            for item in items[:10]:
                out.print(f"    {label}: {item}", markup=False, highlight=False)
            if len(items) > 10:
                out.print(f"    ... and {len(items) - 10} more {label}", markup=False)
        if report.recorded is None:
            out.print("  run with --update to accept the current files", markup=False)
    for problem in report.problems[:50]:
        err_console.print(f"  problem: {problem}", markup=False, highlight=False)
    if len(report.problems) > 50:
        err_console.print(f"  ... and {len(report.problems) - 50} more problems", markup=False)
    if report.recorded is not None:
        out.print(f"  manifest recorded in {report.recorded}", markup=False, highlight=False)
    if report.ok:
        out.print(f"{report.dataset}: verified", style="green", markup=False)


@datasets.command("show")
@click.argument("name")
@click.pass_context
def show_cmd(ctx: click.Context, name: str) -> None:
    """Details of NAME: source, folder, status, splits, manifest hashes, how to get it."""
    st = state(ctx)
    spec, ds = _build(name, st.data_root)
    host = get_host()
    status = _status(ds)
    rows = [
        ("name", spec.name),
        ("summary", spec.summary),
        ("kind", _kind(spec)),
        ("splits", ", ".join(spec.splits)),
        ("source", spec.source or "-"),
        ("plugin", host.registry("dataset").origin(spec.name)),
        ("folder", str(ds.root)),
        ("status", _label(ds, status)),
        ("detail", status.detail or "-"),
    ]
    for split in spec.splits:
        if split in status.splits:
            try:
                digest = ds.manifest_hash(split)
            except LLBenchError as exc:
                digest = f"({exc})"
            rows.append((f"{split}", f"{status.splits[split]} images, manifest {digest[:16]}"))
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(escape(k), escape(str(v)))
    console.print(table)
    if status.state in ("absent", "incomplete") and hasattr(ds, "manual_steps"):
        console.print(ds.manual_steps(paths.cache_dir(st.home)), markup=False, highlight=False)


@datasets.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--layout",
    type=click.Choice(["paired", "unpaired"]),
    required=True,
    help="paired: <split>/{low,high}/ (or {low,high}/); unpaired: <split>/ or images directly.",
)
@click.option("--replace", is_flag=True, help="Replace a dataset you added before under NAME.")
@click.pass_context
def add_cmd(ctx: click.Context, name: str, path: Path, layout: str, replace: bool) -> None:
    """Use your folder PATH as the dataset NAME (no plugin needed)."""
    from llbench.datasets import user

    st = state(ctx)
    existing = user.load_entries(st.home)
    registry = get_host().registry("dataset")
    if name in registry and name not in existing:
        raise DatasetError(
            f"{name!r} is already a dataset (from {registry.origin(name)!r}); choose another name"
        )
    if name in existing and not replace:
        raise DatasetError(
            f"you already added {name!r} from {existing[name]['path']}; pass --replace to change it"
        )
    entry = user.add_entry(name, path, layout, st.home)
    reset_host()  # the next lookup sees the new dataset
    console.print(
        f"added {name}: {layout} folder {entry['path']}, splits {', '.join(entry['splits'])}. "
        f"Run `llbench datasets verify {name}` to check the images and record its manifest.",
        markup=False,
        highlight=False,
    )


@datasets.command("remove")
@click.argument("name")
@click.pass_context
def remove_cmd(ctx: click.Context, name: str) -> None:
    """Forget a dataset you added (the folder is not touched)."""
    from llbench.datasets import user

    st = state(ctx)
    entry = user.remove_entry(name, st.home)
    reset_host()
    console.print(f"removed {name} ({entry['path']} is untouched)", markup=False, highlight=False)
