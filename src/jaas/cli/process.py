"""``jaas convert`` (RAW -> RTRAW) and ``jaas index`` (ESD -> index) commands."""

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
from jaas.cli._errors import shown
from jaas.errors import ConfigError
from jaas.formats.rtraw import StepResult, parse_compression

__all__ = ["convert", "index"]


def report(res: StepResult) -> None:
    """One line per processed file (file names with control characters escaped)."""
    what = "up to date" if res.skipped else f"{res.seconds:.1f} s"
    click.echo(f"{shown(res.input.name)} -> {shown(res.output)} ({res.n_events} events, {what})")


@click.command("convert")
@click.argument("raw", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--outdir", type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--compression",
    default="zstd:5",
    show_default=True,
    help="Codec and level: zstd[:1-22], lz4[:1-12], zlib[:1-9] or none.",
)
@click.option("--catalog", "catalog_url", help="Catalog URL or SQLite path to register outputs.")
@click.option("--force", is_flag=True, help="Rewrite outputs that are already up to date.")
@replace_options
def convert(
    raw: tuple[str, ...],
    outdir: str | None,
    compression: str,
    catalog_url: str | None,
    force: bool,
    overwrite: bool,
    rebuilt: str | None,
) -> None:
    """Convert RAW files to RTRAW (ROOT TTree 'rtraw'), one output per input.

    Outputs are named like the input (run000001_0000.raw -> run000001_0000.rtraw.root),
    beside it or in OUTDIR. An output that exists with the same source checksum and
    software version is kept unless --force; one made from another input (an earlier run)
    is refused unless --overwrite or --rebuilt. Two inputs that
    would write the same output are refused before anything is written; with --catalog
    the new output is registered before it replaces the old one, so a refusal keeps both
    the old file and its row. A bad file is reported and the others are still converted
    (exit code 1 at the end).
    """
    from jaas.formats.rtraw import convert_raw, default_rtraw_path

    codec, level = parse_compression(compression)
    plan = plan_outputs(raw, lambda path: default_rtraw_path(path, outdir))
    cat = open_catalog(catalog_url)

    register = catalog_check(
        cat, rebuilt=rebuilt, kind="rtraw", input_kind="raw", meta_keys=("compression",)
    )

    replace = overwrite or rebuilt is not None

    def step(path: str, out: Path) -> None:
        res = convert_raw(
            path, out, compression=codec, level=level, force=force, overwrite=replace,
            check=register,
        )  # fmt: skip
        report(res)

    run_batch(plan, step, desc="convert", outdir=outdir)


@click.command("index")
@click.argument("esd", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--outdir", type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "hdf5"]),
    default="parquet",
    show_default=True,
    help="Index file format.",
)
@click.option(
    "--catalog",
    "catalog_url",
    help="Catalog URL or SQLite path: ESD ids come from it and outputs are registered.",
)
@click.option(
    "--file-id",
    type=int,
    help="File id stored in the index rows (one ESD only; default: catalog id, else file_seq).",
)
@click.option("--force", is_flag=True, help="Rebuild indexes that are already up to date.")
@replace_options
def index(
    esd: tuple[str, ...],
    outdir: str | None,
    fmt: str,
    catalog_url: str | None,
    file_id: int | None,
    force: bool,
    overwrite: bool,
    rebuilt: str | None,
) -> None:
    """Build one index file per ESD file (time-sorted rows, (file_id, entry) -> event).

    With --catalog, the ESD file is looked up (or registered) to get its id, and the index
    is registered as its child (before it replaces an older index). Without it, the file
    id is --file-id or the ESD's file_seq. An index made from another ESD (an earlier
    run) is refused unless --overwrite or --rebuilt; two inputs that would write the
    same index are refused before anything is written; a bad file is reported and the
    others are still indexed (exit code 1 at the end).
    """
    from jaas.formats.esd import esd_meta
    from jaas.formats.indexing import build_index, default_index_path

    if file_id is not None and len(esd) > 1:
        raise click.UsageError("--file-id applies to one ESD file only")
    plan = plan_outputs(esd, lambda path: default_index_path(path, outdir, fmt))
    cat = open_catalog(catalog_url)

    def step(path: str, out: Path) -> None:
        meta = esd_meta(path)
        run, seq = meta.get("run"), meta.get("file_seq")
        parent = None
        if cat is not None:
            parent = cat.add_file(path, kind="esd", run=run, seq=seq)
        fid = file_id if file_id is not None else (parent.id if parent else seq)
        if fid is None:
            raise ConfigError(f"{shown(path)}: no file_seq in its metadata; pass --file-id")

        register = catalog_check(
            cat, rebuilt=rebuilt, kind="index", input_kind="esd", run=run, seq=seq,
            parent=parent, meta={"format": fmt, "file_id": int(fid)},
        )  # fmt: skip

        res = build_index(
            path, out, file_id=int(fid), run=run, fmt=fmt, force=force,
            overwrite=overwrite or rebuilt is not None, check=register,
        )  # fmt: skip
        report(res)

    run_batch(plan, step, desc="index", outdir=outdir)
