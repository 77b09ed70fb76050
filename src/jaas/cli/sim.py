"""``jaas sim``: simulate a detector run into RAW or index-level files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import click

from jaas.errors import ConfigError
from jaas.sim.params import DEFAULT_START, parse_duration
from jaas.sim.run import simulate

__all__ = ["sim"]


def _parse_scales(items: tuple[str, ...]) -> dict[str, float]:
    scales: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            scales[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if sep and not math.isfinite(scales[name.strip()]):
            raise ConfigError(f"--scale {item!r}: the factor must be a finite number")
        if not sep:
            raise ConfigError(f"--scale {item!r}: expected SOURCE=FACTOR, e.g. reactor_ibd=10")
    return scales


@click.command("sim")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--duration",
    default="1h",
    show_default=True,
    help="Run length with its unit: 600s, 10min, 1h, 2d (a bare number is refused).",
)
@click.option("--mode", type=click.Choice(["index", "hit"]), default="index", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--run", "run_number", type=int, default=1, show_default=True)
@click.option("--scale", multiple=True, help="Rate factor per source, SOURCE=FACTOR (repeatable).")
@click.option("--light-scale", type=float, default=1.0, show_default=True)
@click.option("--pmt-scale", type=float, default=1.0, show_default=True)
@click.option("--max-events-per-file", type=int, default=None, help="Events per output file.")
@click.option("--max-bytes-per-file", type=int, default=None, help="Bytes per RAW file (hit mode).")
@click.option("--start", default=DEFAULT_START, show_default=True, help="Run start (ISO-8601).")
@click.option("--no-truth", is_flag=True, help="Do not write the truth Parquet files.")
@click.option(
    "--force", is_flag=True, help="Clear a previous simulation in OUTDIR (it must be empty)."
)
def sim(
    outdir: Path,
    duration: str,
    mode: str,
    seed: int,
    run_number: int,
    scale: tuple[str, ...],
    light_scale: float,
    pmt_scale: float,
    max_events_per_file: int | None,
    max_bytes_per_file: int | None,
    start: str,
    no_truth: bool,
    force: bool,
) -> None:
    """Simulate a detector run into OUTDIR and print a summary.

    Example: jaas sim out/ --duration 1d --scale reactor_ibd=10 --scale muon=0
    """
    if re.fullmatch(r"\s*[0-9.eE+-]+\s*", duration):
        raise ConfigError(
            f"--duration {duration!r}: give its unit, e.g. {duration.strip()}s, "
            f"{duration.strip()}min, {duration.strip()}h or {duration.strip()}d"
        )
    summary = simulate(
        {
            "run": run_number,
            "start": start,
            "duration_s": parse_duration(duration),
            "seed": seed,
            "mode": mode,
            "scale": _parse_scales(scale),
            "light_scale": light_scale,
            "pmt_scale": pmt_scale,
            "max_events_per_file": max_events_per_file,
            "max_bytes_per_file": max_bytes_per_file,
            "write_truth": not no_truth,
        },
        outdir,
        force=force,
    )
    click.echo(str(summary))
