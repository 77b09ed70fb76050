"""``jaas ibd`` and ``jaas query``: analyses from a terminal, with tables, plots and Parquet."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

__all__ = ["ibd", "query"]


def _open(dataset: str, name: str | None) -> Any:
    from jaas.engine.session.dataset import open_dataset

    return open_dataset(dataset, dataset=name)


def _parse_veto(text: str) -> Any:
    """KIND:TRIGGER:WINDOW[:RADIUS], e.g. ``cylinder:muon and tracked:1.2 s:3 m``."""
    from jaas.engine.core.spec import VETO_KINDS
    from jaas.engine.session.analysis import veto

    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (3, 4):
        raise click.BadParameter(
            f"{text!r}: expected KIND:TRIGGER:WINDOW[:RADIUS], e.g. 'detector:muon:1.5 ms' "
            "or 'cylinder:muon and tracked:1.2 s:3 m'",
            param_hint="--veto",
        )
    kind = parts[0]
    if kind not in VETO_KINDS:
        raise click.BadParameter(f"veto kind {kind!r} is not {', '.join(VETO_KINDS)}",
                                 param_hint="--veto")  # fmt: skip
    return veto(kind, parts[1], parts[2], parts[3] if len(parts) == 4 else None)


_MODES = ["exactly_one", "nearest", "all"]  # jaas.engine.core.spec.MODES, without importing it
_dataset_arg = click.argument("dataset")
_name_opt = click.option(
    "--dataset-name", "name", help="Catalog dataset (DATASET is a catalog URL)."
)
_out_opt = click.option(
    "-o", "--out", type=click.Path(file_okay=False, path_type=Path),
    help="Write pairs (Parquet), plots (PNG) and the summary here.",
)  # fmt: skip
_threads_opt = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads (default: JAAS_THREADS, else one per core on large data).",
)
_backend_opt = click.option(
    "--backend",
    "--scheduler",
    "backend",
    metavar="ADDR",
    help="Where to run: 'local' (default), a Dask scheduler address (tcp://HOST:8786) or "
    "scheduler file (see `jaas cluster up`); --scheduler is an alias.",
)


def _finish(res: Any, out: Path | None, started: float, truth: bool) -> None:
    click.echo(res.summary())
    if truth:
        report = res.truth()
        if report is not None:
            click.echo("")
            click.echo(str(report))
    stats = res.dataset.cache.stats()
    click.echo(f"\n{stats}; {time.perf_counter() - started:.2f} s")
    if out is not None:
        files = res.save(out)
        for kind, path in files.items():
            click.echo(f"wrote {kind:<8} {path}")


@click.command()
@_dataset_arg
@_name_opt
@click.option("--fiducial", default="r < 17.2 m", show_default=True)
@click.option("--prompt", "prompt_e", default="0.7 MeV < E < 12 MeV", show_default=True)
@click.option("--delayed", "delayed_e", default="1.9 MeV < E < 2.5 MeV", show_default=True)
@click.option("--dt-max", default="1 ms", show_default=True)
@click.option("--dt-min", default="0 ns", show_default=True)
@click.option("--dr-max", default="1.5 m", show_default=True, help="'none' for no distance cut.")
@click.option("--mode", type=click.Choice(_MODES),
              default="exactly_one", show_default=True,
              help="Multiplicity: exactly_one (JUNO standard), nearest or all; "
                   "shown in the summary.")  # fmt: skip
@click.option("--veto", "vetoes", multiple=True, metavar="KIND:TRIGGER:WINDOW[:RADIUS]",
              help="Replace the standard vetoes (repeatable).")  # fmt: skip
@click.option("--no-vetoes", is_flag=True, help="No vetoes at all.")
@click.option("--offtime", default=200, show_default=True,
              help="Off-time windows for the accidental estimate (0: none).")  # fmt: skip
@_threads_opt
@_backend_opt
@_out_opt
def ibd(
    dataset: str,
    name: str | None,
    fiducial: str,
    prompt_e: str,
    delayed_e: str,
    dt_max: str,
    dt_min: str,
    dr_max: str,
    mode: str,
    vetoes: tuple[str, ...],
    no_vetoes: bool,
    offtime: int,
    threads: int | None,
    backend: str | None,
    out: Path | None,
) -> None:
    """Run the standard IBD selection on DATASET (a directory of index files, a simulated
    run, or a catalog URL with --dataset-name) and print exposure, pairs, rates, the
    accidental estimate, the dt fit and, on simulated data, the efficiency per cut next to
    the published numbers.

    Example: jaas ibd runs/sim1 --dr-max "1.2 m" -o results/
    """
    from jaas.engine.core.correlate import OffTime
    from jaas.engine.session.analysis import IBDSelection

    started = time.perf_counter()
    ds = _open(dataset, name)
    changes: dict[str, Any] = {
        "fiducial": fiducial,
        "prompt": prompt_e,
        "delayed": delayed_e,
        "dt_max": dt_max,
        "dt_min": dt_min,
        "dr_max": None if dr_max.lower() == "none" else dr_max,
        "mode": mode,
        "offtime": OffTime(n=offtime, start_ns=2_000_000_000) if offtime > 0 else None,
    }
    if no_vetoes:
        changes["vetoes"] = ()
    elif vetoes:
        changes["vetoes"] = tuple(_parse_veto(v) for v in vetoes)
    sel = IBDSelection().with_changes(**changes)
    from jaas.engine.session.analysis import ibd as run_ibd

    res = run_ibd(ds, sel, threads=threads, backend=backend)
    _finish(res, out, started, truth=True)


@click.command()
@_dataset_arg
@_name_opt
@click.option("--select", "condition", help="Count and histogram events passing a condition.")
@click.option("--hist", "hist_column", default="E", show_default=True,
              help="Column to histogram with --select.")  # fmt: skip
@click.option("--prompt", help="Prompt condition (coincidence search).")
@click.option("--delayed", help="Delayed condition (coincidence search).")
@click.option("--dt", "dt_max", default="1 ms", show_default=True, help="Maximum dt.")
@click.option("--dt-min", default="0 ns", show_default=True)
@click.option("--dr", "dr_max", default=None, help="Maximum distance (e.g. '1.5 m').")
@click.option("--mode", type=click.Choice(_MODES),
              default="all", show_default=True,
              help="Multiplicity: all (every pair; `jaas ibd` defaults to exactly_one), "
                   "nearest or exactly_one; shown in the summary.")  # fmt: skip
@click.option("--veto", "vetoes", multiple=True, metavar="KIND:TRIGGER:WINDOW[:RADIUS]")
@click.option("--isolation", multiple=True, metavar="CONDITION:BEFORE:AFTER",
              help="No other such trigger in [t_prompt - BEFORE, t_delayed + AFTER].")  # fmt: skip
@click.option("--since", multiple=True, metavar="NAME=CONDITION",
              help="Time since the last trigger passing CONDITION, as a pair column.")  # fmt: skip
@click.option("--offtime", default=0, show_default=True, help="Off-time windows (0: none).")
@click.option("--label", default="query", show_default=True,
              help="Name of the result and stem of its output files "
                   "(a plain name, never a path).")  # fmt: skip
@_threads_opt
@_backend_opt
@_out_opt
def query(
    dataset: str,
    name: str | None,
    condition: str | None,
    hist_column: str,
    prompt: str | None,
    delayed: str | None,
    dt_max: str,
    dt_min: str,
    dr_max: str | None,
    mode: str,
    vetoes: tuple[str, ...],
    isolation: tuple[str, ...],
    since: tuple[str, ...],
    offtime: int,
    label: str,
    threads: int | None,
    backend: str | None,
    out: Path | None,
) -> None:
    """Run a selection (--select) or a coincidence search (--prompt/--delayed) on DATASET.

    Examples:

      jaas query runs/sim1 --select "E > 20 MeV and not muon"

      jaas query runs/sim1 --prompt "0.7 MeV < E < 3.5 MeV" --delayed "0.7 MeV < E < 1.2 MeV"
      --dt "2 ms" --dt-min "1 us" --dr "1 m" --label BiPo214
    """
    from jaas.engine.core.correlate import OffTime
    from jaas.engine.session.analysis import coincidence, select
    from jaas.engine.session.results import file_label
    from jaas.errors import ConfigError

    try:
        stem = file_label(label)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from None
    del stem
    started = time.perf_counter()
    ds = _open(dataset, name)
    if condition is not None:
        if prompt or delayed:
            raise click.UsageError("use either --select or --prompt/--delayed, not both")
        if backend not in (None, "local"):
            click.echo("note: --select runs in this process; --backend applies to "
                       "coincidence searches", err=True)  # fmt: skip
        sel = select(ds, condition)
        click.echo(sel.summary())
        h = sel.hist(hist_column)
        click.echo(str(h) if sel.n else "(no events)")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{label}_events.parquet"
            sel.events_table.to_parquet(path)
            click.echo(f"wrote events   {path}")
        return
    if not (prompt and delayed):
        raise click.UsageError("give --select, or both --prompt and --delayed")
    iso = []
    for text in isolation:
        parts = text.split(":")
        if len(parts) != 3:
            raise click.BadParameter(f"{text!r}: expected CONDITION:BEFORE:AFTER",
                                     param_hint="--isolation")  # fmt: skip
        iso.append((parts[0], parts[1], parts[2]))
    since_map = {}
    for text in since:
        key, sep, cond = text.partition("=")
        if not sep:
            raise click.BadParameter(f"{text!r}: expected NAME=CONDITION", param_hint="--since")
        since_map[key.strip()] = cond
    res = coincidence(
        ds,
        prompt=prompt,
        delayed=delayed,
        dt=(dt_min, dt_max),
        dr=dr_max,
        mode=mode,  # type: ignore[arg-type]
        vetoes=[_parse_veto(v) for v in vetoes],
        isolation=iso,
        since=since_map,
        offtime=OffTime(n=offtime, start_ns=2_000_000_000) if offtime > 0 else None,
        threads=threads,
        label=label,
        backend=backend,
    )
    _finish(res, out, started, truth=False)
