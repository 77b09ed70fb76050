"""``jaas reco``: RTRAW -> ESD reconstruction, and ``jaas reco calibrate``."""

from __future__ import annotations

from pathlib import Path

import click

from jaas.cli._batch import (
    catalog_check,
    open_catalog,
    plan_outputs,
    replace_options,
    run_batch,
)

__all__ = ["reco"]


class _DefaultGroup(click.Group):
    """A group whose arguments go to the ``run`` sub-command unless they name another one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("reco", cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def reco() -> None:
    """Reconstruct RTRAW files into ESD files: `jaas reco RTRAW... [-o DIR]`.

    `jaas reco calibrate --out FILE` derives a calibration from a simulated source run.
    """


@reco.command("run")
@click.argument("rtraw", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--outdir", type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False),
    help="Calibration JSON (default: shipped v1, or derived for test-scale detectors).",
)
@click.option(
    "--run-meta",
    type=click.Path(exists=True, dir_okay=False),
    help="Simulation run metadata JSON (default: run<RUN>.json beside or above the input).",
)
@click.option("--catalog", "catalog_url", help="Catalog URL or SQLite path to register outputs.")
@click.option("--force", is_flag=True, help="Rewrite outputs that are already up to date.")
@replace_options
def run(
    rtraw: tuple[str, ...],
    outdir: str | None,
    calibration: str | None,
    run_meta: str | None,
    catalog_url: str | None,
    force: bool,
    overwrite: bool,
    rebuilt: str | None,
) -> None:
    """Reconstruct RTRAW files (one ESD per input, named like it, beside it or in OUTDIR).

    An ESD that exists with the same parent checksum, calibration and software version is
    kept unless --force; one made from another input (an earlier run) is refused unless
    --overwrite or --rebuilt REASON (which also replaces its catalog row, as a new
    calibration needs). Two inputs that would write the same ESD are refused before
    anything is written; a bad file is reported and the others are still reconstructed
    (exit code 1 at the end).
    """
    from jaas.cli.process import report
    from jaas.formats.esd import default_esd_path
    from jaas.reco.run import reconstruct

    plan = plan_outputs(rtraw, lambda path: default_esd_path(path, outdir))
    cat = open_catalog(catalog_url)

    register = catalog_check(
        cat, rebuilt=rebuilt, kind="esd", input_kind="rtraw", meta_keys=("calib_version",)
    )

    replace = overwrite or rebuilt is not None

    def step(path: str, out: Path) -> None:
        res = reconstruct(
            path, out, calibration=calibration, run_meta=run_meta, force=force,
            overwrite=replace, check=register,
        )  # fmt: skip
        report(res)

    run_batch(plan, step, desc="reco", outdir=outdir)


@reco.command("calibrate")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output JSON.")
@click.option("--light-scale", default=1.0, show_default=True, help="Detector light_scale.")
@click.option("--pmt-scale", default=1.0, show_default=True, help="Detector pmt_scale.")
@click.option("--version", "version", default="v1", show_default=True, help="Version name.")
@click.option("--events-per-point", default=100, show_default=True, help="Events per radius.")
@click.option("--seed", default=20_240_601, show_default=True, help="Random seed.")
def calibrate(
    out: str, light_scale: float, pmt_scale: float, version: str, events_per_point: int, seed: int
) -> None:
    """Derive a calibration from a simulated source run (2.22 MeV at a grid of radii)."""
    from jaas.detector import Detector
    from jaas.reco.calib import derive_calibration

    det = Detector(light_scale=light_scale, pmt_scale=pmt_scale)
    cal = derive_calibration(det, version=version, events_per_point=events_per_point, seed=seed)
    cal.save(out)
    click.echo(
        f"calibration {cal.version} -> {out}: {cal.pe_per_mev:.1f} PE/MeV at the centre, "
        f"relative light {cal.nonuniformity[-1]:.3f} at r={cal.radius_m[-1]} m, "
        f"dark rate {cal.dark_rate_hz:.0f} Hz/PMT"
    )
