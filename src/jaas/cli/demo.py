"""``jaas demo``: simulate a run and analyse it end to end, on embedded defaults."""

from __future__ import annotations

import time
from pathlib import Path

import click

__all__ = ["demo"]


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
def demo(days: float, seed: int, out: Path, threads: int, pipeline_seconds: float) -> None:
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

    started = time.perf_counter()
    if pipeline_seconds > 0:
        from jaas.kup.demo import run_demo

        click.secho(
            f"A. keep-up production: {pipeline_seconds:g} s of RAW data through the pipeline",
            bold=True,
        )
        click.echo(run_demo(out / "kup-demo", seconds=pipeline_seconds))
        click.echo("")
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
