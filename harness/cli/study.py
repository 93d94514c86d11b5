"""``llbench study``: create, serve, score, export and inspect human studies.

Heavy imports (numpy, pandas, scipy, matplotlib) happen inside the commands, so mounting this
group costs the CLI next to nothing.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import signal
import sys
import warnings
from pathlib import Path

import click
from rich.table import Table

from llbench.cli.common import ErrorHandlingGroup, console, err_console, escape, state
from llbench.errors import LLBenchError


@click.group(cls=ErrorHandlingGroup)
def study() -> None:
    """Human preference studies (2AFC pairs or 1-5 ratings): create, serve, score, export."""


def _fmt(x: float, digits: int = 3) -> str:
    return "-" if x != x else f"{x:.{digits}f}"


def _cell(v) -> str:
    import numpy as np

    if isinstance(v, (bool, np.bool_)):
        return "[bold red]yes[/]" if v else "no"
    if isinstance(v, (float, np.floating)):
        return _fmt(float(v))
    return str(v)


@study.command()
@click.argument("name")
@click.option(
    "--methods", required=True, help="Comma-separated methods to compare, e.g. he,lime,sgz."
)
@click.option("--dataset", required=True, help="Dataset whose stored run outputs are shown.")
@click.option(
    "--images",
    default="all",
    show_default=True,
    help="Which images: all, first:N (HiLLIE: first:40), last:N, random:N, or comma-separated keys.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the randomisation.")
@click.option("--split", default="test", show_default=True, help="Dataset split of the runs.")
@click.option(
    "--mode",
    type=click.Choice(["pairwise", "rating"]),
    default="pairwise",
    show_default=True,
    help="pairwise: choose the better of two (2AFC); rating: score each result 1-5 (MOS).",
)
@click.option("--title", default=None, help="Title shown to participants.")
@click.option("--copy", "copy_files", is_flag=True, help="Copy the images instead of hard-linking.")
@click.pass_context
def create(ctx, name, methods, dataset, images, seed, split, mode, title, copy_files) -> None:
    """Build study NAME from the latest finished runs of METHODS on DATASET."""
    from llbench.study.sources import create_study_from_runs
    from llbench.study.store import StudyStore

    home = state(ctx).home
    st = create_study_from_runs(
        home,
        name,
        [m for m in methods.split(",")],
        dataset,
        images=images,
        seed=seed,
        split=split,
        kind=mode,
        title=title,
        link=not copy_files,
    )
    items = StudyStore(home).items(name)
    src = st.source
    console.print(
        f"created {st.kind} study [bold]{escape(st.name)}[/]: {len(items)} items per participant "
        f"({len(src['contents'])} images x "
        + (
            f"{len(src['methods']) * (len(src['methods']) - 1) // 2} pairs"
            if st.kind == "pairwise"
            else f"{len(src['methods'])} methods"
        )
        + ")"
    )
    for m, key in src["runs"].items():
        console.print(f"  {m}: run {key}", markup=False)
    console.print(f"  images in {st.image_dir}", markup=False)
    console.print(f"next: llbench study serve {name}", markup=False)


@study.command()
@click.argument("name")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 picks a free one).",
)
@click.pass_context
def serve(ctx, name, host, port) -> None:
    """Serve study NAME as a web page until Ctrl-C."""
    import logging

    from llbench.study.server import StudyServer

    server = StudyServer(state(ctx).home, name, host=host, port=port)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        err_console.print(
            f"[yellow]warning:[/] listening on {escape(host)}: anyone who can reach this address can "
            "take part. Use a trusted network."
        )
    console.print(f"serving study [bold]{escape(name)}[/] at {server.url}  (Ctrl-C to stop)")

    def _stop(signum, frame):  # SIGTERM (service managers, containers) stops like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.httpd.server_close()
    console.print("stopped; answers are in the llbench database")


@study.command()
@click.argument("name", required=False)
@click.option(
    "--from-csv",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Score trials from a CSV file (one trial per row) instead of a stored study.",
)
@click.option("--observer", "observer_col", default=None, help="CSV column naming the observer.")
@click.option("--a", "a_col", default=None, help="CSV column with condition A.")
@click.option("--b", "b_col", default=None, help="CSV column with condition B.")
@click.option(
    "--a-chosen", "a_chosen_col", default=None, help="CSV column that is true/1 when A was chosen."
)
@click.option(
    "--chosen",
    "chosen_col",
    default=None,
    help="CSV column naming the chosen condition (instead of --a-chosen).",
)
@click.option("--reference", default=None, help="Anchor this condition at 0 (default: zero mean).")
@click.option(
    "--bootstrap",
    "n_bootstrap",
    default=1000,
    show_default=True,
    type=click.IntRange(0, 100000),
    help="Bootstrap samples for the intervals.",
)
@click.option(
    "--ci",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0.5, 0.999),
    help="Interval level.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
@click.option(
    "--prior",
    type=click.Choice(["unanimous", "all", "none", "pwcmp"]),
    default="unanimous",
    show_default=True,
    help="Prior that keeps unanimous answers finite; pwcmp: the default prior of pwcmp's "
    "pw_scale, which gives pwcmp's numbers (see llbench.study.priors).",
)
@click.option("--exclude", multiple=True, help="Leave out a participant (repeatable).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="CSV file for the scores (one row per condition).",
)
@click.option(
    "--figure",
    type=click.Path(dir_okay=False),
    default=None,
    help="Figure of the scores (.png, .svg or .pdf).",
)
@click.pass_context
def score(
    ctx,
    name,
    csv_path,
    observer_col,
    a_col,
    b_col,
    a_chosen_col,
    chosen_col,
    reference,
    n_bootstrap,
    ci,
    seed,
    prior,
    exclude,
    output,
    figure,
) -> None:
    """Scale preferences with Thurstone Case V (JOD) or average ratings (MOS).

    Give a study NAME, or --from-csv FILE with --a, --b and --a-chosen (or --chosen).
    """
    import pandas as pd

    from llbench.study.figures import plot_scores
    from llbench.study.scaling import DisconnectedWarning, ScalingResult, scale_pairwise

    if (name is None) == (csv_path is None):
        raise click.UsageError("give a study NAME or --from-csv FILE (not both)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DisconnectedWarning)
        if csv_path is not None:
            if not a_col or not b_col or not (a_chosen_col or chosen_col):
                raise click.UsageError("--from-csv needs --a, --b and --a-chosen (or --chosen)")
            if a_chosen_col and chosen_col:
                raise click.UsageError("give --a-chosen or --chosen, not both")
            try:
                data = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
            except Exception as exc:  # noqa: BLE001 - pandas raises many types
                raise LLBenchError(f"cannot read {csv_path}: {exc}") from exc
            result = scale_pairwise(
                data,
                observer=observer_col,
                a=a_col,
                b=b_col,
                chosen=chosen_col,
                a_chosen=a_chosen_col,
                reference=reference,
                prior=prior,
                n_bootstrap=n_bootstrap,
                ci=ci,
                seed=seed,
            )
            kind, title, out_dir = "pairwise", Path(csv_path).stem, None
        else:
            from llbench.study.analysis import score_study
            from llbench.study.store import StudyStore

            home = state(ctx).home
            st = StudyStore(home).require_study(name)
            result = score_study(
                home,
                name,
                reference=reference,
                n_bootstrap=n_bootstrap,
                ci=ci,
                seed=seed,
                prior=prior,
                exclude=list(exclude),
            )
            kind, title, out_dir = st.kind, f"User study: {name}", st.folder / "results"
    for w in caught:
        if issubclass(w.category, DisconnectedWarning):
            err_console.print(f"[yellow]warning:[/] {escape(str(w.message))}")

    if name is not None:  # kept for `llbench report`, with the settings that made it
        from llbench.reports.studies import store_study_result
        from llbench.study.store import StudyStore

        settings = {
            "reference": reference,
            "n_bootstrap": n_bootstrap,
            "ci": ci,
            "seed": seed,
            "prior": prior,
            "exclude": sorted(exclude),
        }
        store_study_result(home, name, kind, result, settings, StudyStore(home).count_answers(name))
    frame = result.to_frame().sort_values("score", ascending=False)
    unit = "JOD" if kind == "pairwise" else "MOS"
    pct = f"{round(result.ci * 100)}%"
    t = Table(title=f"{escape(name or Path(csv_path).name)}: global scores ({unit}, {pct} CI)")
    for col in ("condition", "score", "ci_low", "ci_high"):
        t.add_column(col, justify="left" if col == "condition" else "right")
    extra = "comparisons" if kind == "pairwise" else "ratings"
    t.add_column(extra, justify="right")
    for r in frame.itertuples():
        t.add_row(
            escape(str(r.condition)),
            _fmt(r.score),
            _fmt(r.ci_low),
            _fmt(r.ci_high),
            str(getattr(r, extra)),
        )
    console.print(t)
    if isinstance(result, ScalingResult):
        console.print(
            f"{result.n_observers} observers, {result.n_trials} answers; anchor {result.anchor}; "
            f"prior {result.prior}; {result.n_bootstrap} bootstrap samples over "
            f"{result.bootstrap_unit}; Kendall's u = {_fmt(result.agreement_u)}",
            markup=False,
        )
        if not result.connected:
            console.print(
                f"components: {' | '.join(', '.join(c) for c in result.components)}", markup=False
            )
    else:
        console.print(
            f"{result.n_observers} observers, {int(result.n_ratings.sum())} ratings; "
            f"{result.n_bootstrap} bootstrap samples over observers"
        )
    obs = result.observers
    if obs is not None and not obs.empty:
        ot = Table(title="observers")
        for col in obs.columns:
            ot.add_column(col, justify="left" if col == "observer" else "right")
        for r in obs.itertuples(index=False):
            ot.add_row(*[escape(_cell(v)) for v in r])
        console.print(ot)
        flagged = obs.loc[obs["outlier"], "observer"].tolist()
        if flagged:
            console.print(
                f"[yellow]possible outliers:[/] {escape(', '.join(map(str, flagged)))} "
                "(rescore with --exclude to leave them out)"
            )

    if output is None and out_dir is not None:
        output = out_dir / "scores.csv"
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(output, index=False)
        console.print(f"wrote {output}", markup=False)
        if obs is not None and not obs.empty:
            obs_path = Path(output).with_name(Path(output).stem + "_observers.csv")
            obs.to_csv(obs_path, index=False)
            console.print(f"wrote {obs_path}", markup=False)
    if figure is None and out_dir is not None:
        figure = out_dir / "scores.png"
    if figure is not None:
        from llbench.reports.studies import pair_rows

        scale = (st.scale_min, st.scale_max) if name is not None and kind == "rating" else None
        p = plot_scores(
            frame,
            figure,
            title=title,
            unit=unit,
            scale=scale,
            pairs=pair_rows(result),
            level=result.ci,
        )
        console.print(f"wrote {p}", markup=False)


@study.command()
@click.argument("name")
@click.option(
    "--output",
    "-o",
    default=None,
    help="CSV file (default <study folder>/results/answers.csv; - for stdout).",
)
@click.pass_context
def export(ctx, name, output) -> None:
    """Write every answer of study NAME to CSV, one row per answer."""
    from llbench.study.analysis import answers_frame, export_csv
    from llbench.study.store import StudyStore

    home = state(ctx).home
    st = StudyStore(home).require_study(name)
    if output == "-":
        answers_frame(home, name).to_csv(sys.stdout, index=False)
        return
    path = export_csv(home, name, output or st.folder / "results" / "answers.csv")
    console.print(f"wrote {path}", markup=False)


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return _dt.datetime.fromtimestamp(float(t)).strftime("%Y-%m-%d %H:%M")


@study.command()
@click.argument("name", required=False)
@click.pass_context
def status(ctx, name) -> None:
    """List studies, or show the progress of each participant of study NAME."""
    from llbench.study.store import StudyStore

    sstore = StudyStore(state(ctx).home)
    if name is None:
        studies = sstore.list_studies()
        if not studies:
            console.print("no studies yet; create one with `llbench study create`")
            return
        t = Table(title="studies")
        for col in ("name", "kind", "items", "conditions", "participants", "answers", "created"):
            t.add_column(col)
        for s in studies:
            t.add_row(
                escape(s.name),
                s.kind,
                str(len(sstore.items(s.name))),
                escape(", ".join(sstore.conditions(s.name))),
                str(len(sstore.participants(s.name))),
                str(sstore.count_answers(s.name)),
                _when(s.created),
            )
        console.print(t)
        return
    s = sstore.require_study(name)
    total = len(sstore.items(name))
    console.print(
        f"study [bold]{escape(s.name)}[/] ({s.kind}), {total} items, seed {s.seed}, "
        f"conditions: {escape(', '.join(sstore.conditions(name)))}"
    )
    if s.source.get("from") == "runs":
        console.print(
            f"from runs on {s.source['dataset']} ({s.source['split']}), images {s.source['images']}",
            markup=False,
        )
    parts = sstore.participants(name)
    if not parts:
        console.print("no participants yet")
        return
    t = Table(title="participants")
    for col in ("participant", "answered", "progress", "time spent", "started", "last answer"):
        t.add_column(col)
    for p in parts:
        spent = int(sstore.elapsed(name, p["participant"]))
        t.add_row(
            escape(str(p["participant"])),
            f"{p['answered']} / {total}",
            f"{100 * p['answered'] / max(total, 1):.0f}%",
            f"{spent // 60}:{spent % 60:02d}",
            _when(p["started"]),
            _when(p["last_answer"]),
        )
    console.print(t)
