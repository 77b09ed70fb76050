"""``jaas demo``: simulate a run and analyse it end to end, on embedded defaults.

Part A (:func:`run_demo`) drives the keep-up pipeline: simulate, ``up``, ingest, wait,
analyse, ``down``; part B simulates days of index-level data and runs the IBD selection.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Any

import click

from jaas.cli.kup_text import format_status
from jaas.errors import PipelineError

__all__ = ["DEMO_SIM", "demo", "run_demo", "wait_until_done"]

# A short hit-level run on a scaled-down detector (10% light, 10% of the PMTs) so that
# reconstruction takes seconds per file; the reactor IBD rate is boosted 3000x over the
# physics.md [rates] value so that a few tens of seconds hold tens of IBD pairs.
DEMO_SIM: dict[str, Any] = {
    "mode": "hit",
    "light_scale": 0.1,
    "pmt_scale": 0.1,
    "scale": {"reactor_ibd": 3000.0},
    "max_events_per_file": 120,
    "seed": 4,
    "run": 1,
}


def wait_until_done(
    state_dir: str | os.PathLike[str],
    n_files: int,
    *,
    limit: float = 600.0,
    stall: float = 180.0,
    progress: bool = True,
) -> Any:
    """Wait until every file is done or dead at some stage; show files done per stage.

    Raises:
        PipelineError: after ``limit`` s, or when nothing moved for ``stall`` s (the last
            status, with its failures, is in the message).
    """
    from jaas.kup.pipeline import status
    from jaas.progress import progress as bar_of

    st = status(state_dir)
    stages = list(st.counts)
    kw: dict[str, Any] = {} if progress else {"disable": True}
    t0 = last_move = time.monotonic()
    seen = -1
    with bar_of(total=n_files * len(stages), desc="keep-up", unit="step", **kw) as bar:
        while True:
            st = status(state_dir)
            done = {s: st.files_done(s) for s in stages}
            dead = sum(c.get("dead", 0) for c in st.counts.values())
            moved = sum(done.values())
            bar.set_postfix_str(" ".join(f"{s} {n}/{n_files}" for s, n in done.items()))
            bar.update(moved - bar.n)
            if moved != seen:
                seen, last_move = moved, time.monotonic()
            if done[stages[-1]] + dead >= n_files:
                return st
            now = time.monotonic()
            if now - t0 > limit or now - last_move > stall:
                raise PipelineError(
                    f"pipeline in {state_dir} did not finish in {now - t0:.0f} s:\n"
                    + format_status(st)
                )
            time.sleep(0.5)


def run_demo(
    outdir: str | os.PathLike[str],
    *,
    seconds: float = 25.0,
    progress: bool = True,
    db_url: str | None = None,
    keep_running: bool = False,
) -> str:
    """Simulate ``seconds`` of detector time, run the keep-up pipeline, analyse IBD.

    The pipeline (embedded broker, SQLite ledger and catalog in ``OUTDIR/kup``) is always
    stopped at the end, also on failure. About 60-90 s for the default 25 s on 2 cores.

    Args:
        outdir: working directory (``sim/``, ``kup/``).
        seconds: simulated detector time.
        progress: show progress bars (simulation, files done per stage).
        db_url: ledger and catalog database (default: SQLite in ``OUTDIR/kup``).

    Returns:
        A printable report: simulation, pipeline status, IBD summary, timings.

    Example:
        >>> print(run_demo("demo", seconds=20))   # doctest: +SKIP
    """
    from jaas.engine.analysis import ibd
    from jaas.engine.dataset import open_dataset
    from jaas.kup.config import KupSettings
    from jaas.kup.pipeline import down, ingest, up
    from jaas.sim.run import simulate

    out = Path(outdir).resolve()
    t0 = time.perf_counter()
    old = os.environ.get("JAAS_PROGRESS")
    if not progress:
        os.environ["JAAS_PROGRESS"] = "0"
    try:
        summary = simulate({**DEMO_SIM, "duration_s": float(seconds)}, out / "sim", force=True)
    finally:
        if not progress:
            _restore(old)
    raws = sorted(str(p) for p in (out / "sim" / "raw").glob("*.raw"))
    if not raws:
        raise PipelineError(f"{out / 'sim'}: the simulation wrote no RAW files")
    t_sim = time.perf_counter() - t0
    settings = KupSettings(state_dir=out / "kup", db_url=db_url, session_timeout_ms=3000)
    ok = False
    try:
        up(settings)
        ingest(settings.state_dir, raws)
        st = wait_until_done(settings.state_dir, len(raws), progress=progress)
        t_kup = time.perf_counter() - t0 - t_sim
        ds = open_dataset(settings.database, dataset="keepup")
        result = ibd(ds)
        ok = True
    finally:
        if not (ok and keep_running):  # a failed demo never leaves processes behind
            down(settings.state_dir, timeout=10)
    t_all = time.perf_counter() - t0
    lines = [
        f"simulated {seconds:g} s of run {DEMO_SIM['run']}: {summary.n_events} events in "
        f"{len(raws)} RAW files ({t_sim:.1f} s)",
        f"keep-up pipeline in {settings.state_dir} ({t_kup:.1f} s):",
        format_status(dataclasses.replace(st, processes={})),
        "",
        f"catalog {settings.database}, dataset 'keepup':",
        result.summary(),
        "",
        f"total {t_all:.1f} s; pipeline " + ("still running" if keep_running else "stopped"),
    ]
    return "\n".join(lines)


def _restore(old: str | None) -> None:
    if old is None:
        os.environ.pop("JAAS_PROGRESS", None)
    else:
        os.environ["JAAS_PROGRESS"] = old


@click.command()
@click.option("--days", default=2.0, show_default=True, help="Detector time to simulate.")
@click.option("--seed", default=1, show_default=True)
@click.option(
    "-o", "--out", default="demo-output", show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)  # fmt: skip
@click.option("--threads", default=2, show_default=True)
@click.option(
    "--pipeline-seconds", default=25.0, show_default=True,
    help="Detector time pushed through the keep-up pipeline (0: skip that part).",
)  # fmt: skip
@click.option(
    "--serve", "serve_port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
    help="Keep the part-A pipeline running and serve the operator portal on "
    "http://127.0.0.1:PORT/ until Ctrl-C (then the pipeline stops); part B is skipped.",
)  # fmt: skip
def demo(
    days: float,
    seed: int,
    out: Path,
    threads: int,
    pipeline_seconds: float,
    serve_port: int | None,
) -> None:
    """Run jaas end to end on embedded defaults, in two parts.

    Part A, keep-up production: simulate PIPELINE_SECONDS of hit-level RAW data (reduced
    light and PMT count, boosted reactor rate), start the pipeline (embedded Kafka-protocol
    broker, SQLite, local executor), push the RAW files through ingest -> rtraw -> reco ->
    index -> publish, and run the standard IBD selection on what was published.

    Part B, physics: simulate DAYS of detector data at index level (all sources at their
    default rates), run the standard IBD selection, and print the exposure, the candidates,
    the accidental estimate, the efficiency per cut against the simulation truth next to
    the published numbers; plots and Parquet output go under OUT.
    """
    from jaas.engine.analysis import ibd
    from jaas.engine.dataset import open_dataset
    from jaas.sim import SimConfig, simulate

    if serve_port is not None and pipeline_seconds <= 0:
        raise click.UsageError("--serve needs the pipeline part (--pipeline-seconds > 0)")
    started = time.perf_counter()
    if pipeline_seconds > 0:
        click.secho(
            f"A. keep-up production: {pipeline_seconds:g} s of RAW data through the pipeline",
            bold=True,
        )
        click.echo(
            run_demo(
                out / "kup-demo", seconds=pipeline_seconds, keep_running=serve_port is not None
            )
        )
        click.echo("")
    if serve_port is not None:
        _serve_portal((out / "kup-demo" / "kup").resolve(), serve_port)
        return
    run_dir = out / "sim"
    click.secho(f"B.1/3 simulating {days:g} days of detector data (index level) ...", bold=True)
    summary = simulate(
        SimConfig(run=1, duration_s=days * 86_400.0, seed=seed, mode="index"), run_dir, force=True
    )
    click.echo(str(summary))
    click.secho("\nB.2/3 opening the dataset", bold=True)
    ds = open_dataset(run_dir)
    click.echo(ds.info())
    click.secho("\nB.3/3 standard IBD selection", bold=True)
    t0 = time.perf_counter()
    res = ibd(ds, threads=threads)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    ibd(ds, threads=threads, dr_max="1.2 m")
    warm = time.perf_counter() - t0
    click.echo(res.summary())
    report = res.truth()
    if report is not None:
        click.echo("")
        click.echo(str(report))
    files = res.save(out / "ibd")
    click.echo("")
    click.echo(
        f"query time: {cold:.2f} s cold (reads {len(ds.files)} files), "
        f"{warm:.2f} s warm with a changed cut (cached columns: {ds.cache.stats()})"
    )
    for kind, path in files.items():
        click.echo(f"wrote {kind:<8} {path}")
    click.secho(f"\ndemo done in {time.perf_counter() - started:.1f} s", bold=True)
    click.echo(
        "\nTo watch a live pipeline in the operator portal: "
        f"jaas demo --serve 8080 -o {out}, then open http://127.0.0.1:8080/"
    )


def _serve_portal(state_dir: Path, port: int) -> None:
    """Serve the portal on the demo's running pipeline until Ctrl-C, then stop both."""
    from jaas.cli.portal import serve
    from jaas.kup.pipeline import down

    click.secho(f"operator portal: http://127.0.0.1:{port}/  (Ctrl-C stops it)", bold=True)

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # uvicorn shuts down on SIGTERM, then raises the signal again: with the default handler
    # that would end the process before the pipeline is stopped (a `kill` or `timeout`)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        serve.main([str(state_dir), "--port", str(port)], standalone_mode=False, prog_name="portal")
    finally:
        down(state_dir, timeout=10)
        click.echo(f"pipeline in {state_dir} stopped")
        signal.signal(signal.SIGTERM, previous)
