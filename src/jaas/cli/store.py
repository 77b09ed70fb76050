"""``jaas store``: add, list, show and verify catalogued files; datasets."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import click

from jaas.errors import JaasError
from jaas.store import Catalog, FileRecord

__all__ = ["store"]


def _catalog(ctx: click.Context, *, readonly: bool = False) -> Catalog:
    """The catalog of ``--catalog`` (opened once per command line); reading commands open
    it ``readonly``, so that they never create a catalog."""
    obj = ctx.ensure_object(dict)
    if obj.get("catalog") is None:
        url = obj.get("url")
        obj["catalog"] = (
            Catalog(url, readonly=readonly) if url else Catalog.default(readonly=readonly)
        )
        ctx.find_root().call_on_close(obj["catalog"].close)
    cat = obj["catalog"]
    assert isinstance(cat, Catalog)
    return cat


@click.group("store")
@click.option(
    "--catalog",
    "url",
    metavar="URL",
    default=None,
    help="Catalog URL or SQLite path (default: $JAAS_CATALOG, else "
    "~/.local/share/jaas/catalog.db).",
)
@click.pass_context
def store(ctx: click.Context, url: str | None) -> None:
    """Event catalog: add, list, show and verify files; datasets."""
    ctx.ensure_object(dict)
    ctx.obj["url"] = url


def _set_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["url"] = value


# ``--catalog`` is accepted after the subcommand too (``jaas store ls --catalog x.db``)
_catalog_option = click.option(
    "--catalog",
    metavar="URL",
    default=None,
    expose_value=False,
    callback=_set_url,
    help="Catalog URL or SQLite path (as for `jaas store --catalog`).",
)


def _file_ref(text: str) -> int | str:
    """``ID`` or ``PATH``: digits mean an id unless a file of that name exists."""
    return int(text) if text.isdigit() and not os.path.exists(text) else text


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(n)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


@store.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--kind", type=click.Choice(["raw", "rtraw", "esd", "index", "truth", "meta"]))
@click.option("--run", type=int, help="Run number (inferred from the file when possible).")
@click.option("--seq", type=int, help="File sequence number in the run.")
@click.option("--parent", "parents", type=int, multiple=True, help="Parent file id (repeat).")
@click.option("--software-version", default=None, help="Version of the software that wrote it.")
@click.option(
    "--schema",
    type=click.Path(exists=True, dir_okay=False),
    help="Schema mapping (YAML) of a ROOT file written by other software: writes and "
    "registers a jaas index file made from it.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="With --schema: directory of the index files (default: the catalog's data dir).",
)
@_catalog_option
@click.pass_context
def add(
    ctx: click.Context,
    paths: tuple[str, ...],
    kind: str | None,
    run: int | None,
    seq: int | None,
    parents: tuple[int, ...],
    software_version: str | None,
    schema: str | None,
    out: str | None,
) -> None:
    """Register files; kind, run, sequence, events and time range are read from RAW,
    Parquet and ROOT files where possible.

    \b
    Examples:
      jaas store add run1234.000.raw run1234.001.raw
      jaas store add esd.root --kind esd --parent 17
      jaas store add TEvent.root --schema junosw.yaml
    """
    if schema is not None:
        options = (("--kind", kind), ("--run", run), ("--seq", seq), ("--parent", parents))
        given = [name for name, value in options if value is not None and value != ()]
        if given:
            raise click.UsageError(
                f"{', '.join(given)} cannot be used with --schema: the foreign file is "
                "registered as kind esd and its run comes from the mapping's run column"
            )
    cat = _catalog(ctx)
    if schema is not None:
        _add_foreign(cat, paths, schema, out, software_version)
        return
    from jaas.store.check import check_content
    from jaas.store.inspect import describe_file

    failed = 0
    for path in paths:
        try:
            info = describe_file(path, kind)
            check_content(path, info["kind"])
            rec = cat.add_file(
                path,
                kind=info["kind"],
                run=run if run is not None else info.get("run"),
                seq=seq if seq is not None else info.get("seq"),
                parents=parents,
                software_version=software_version,
                n_events=info.get("n_events"),
                t_min=info.get("t_min"),
                t_max=info.get("t_max"),
            )
        except (JaasError, OSError) as exc:
            failed += 1
            click.echo(f"error: {_one_line(path)}: not registered: {_one_line(str(exc))}", err=True)
            continue
        click.echo(f"{rec.id}\t{rec.kind}\t{rec.path}")
    _summary(failed, len(paths))


def _one_line(text: str) -> str:
    return text.replace("\n", "\\n").replace("\r", "\\r")


def _summary(failed: int, total: int) -> None:
    if failed:
        click.echo(f"{failed} of {total} files not registered", err=True)
        raise SystemExit(1)


def _add_foreign(
    cat: Catalog, paths: tuple[str, ...], schema: str, out: str | None, version: str | None
) -> None:
    from jaas.store.foreign import ingest_foreign_many
    from jaas.store.mapping import load_mapping

    mapping = load_mapping(schema)
    done, failed = ingest_foreign_many(cat, paths, mapping, out_dir=out, software_version=version)
    for res in done:
        click.echo(f"{res.esd.id}\tesd\t{res.esd.path}\n{res.index.id}\tindex\t{res.index.path}")
    for path, exc in failed:
        click.echo(f"error: {_one_line(path)}: not registered: {_one_line(str(exc))}", err=True)
    _summary(len(failed), len(paths))


def _rows(files: list[FileRecord]) -> list[list[str]]:
    return [
        [
            str(f.id),
            f.kind,
            _dash(f.run),
            _dash(f.seq),
            _dash(f.n_events),
            _size(f.size),
            _dash(f.adler32),
            f.status,
            f.path,
        ]
        for f in files
    ]


_HEADER = ["id", "kind", "run", "seq", "events", "size", "adler32", "status", "path"]


@store.command("ls")
@click.option("--kind", default=None, help="Only files of this kind.")
@click.option("--run", type=int, default=None, help="Only files of this run.")
@click.option("--dataset", default=None, help="Only files of this dataset (latest version).")
@click.option("--status", default=None, help="Only files with this status.")
@_catalog_option
@click.pass_context
def ls(
    ctx: click.Context, kind: str | None, run: int | None, dataset: str | None, status: str | None
) -> None:
    """List files as a table, ordered by run and sequence number."""
    files = _catalog(ctx, readonly=True).files(kind=kind, run=run, dataset=dataset, status=status)
    if not files:
        click.echo("no files", err=True)
        return
    click.echo(_table(_rows(files), _HEADER))


def _ns(value: int | None) -> str:
    if value is None:
        return "-"
    when = dt.datetime.fromtimestamp(value // 1_000_000_000, dt.UTC)
    return f"{value} ({when:%Y-%m-%d %H:%M:%S}.{value % 1_000_000_000:09d} UTC)"


@store.command("show")
@click.argument("file")
@_catalog_option
@click.pass_context
def show(ctx: click.Context, file: str) -> None:
    """All fields of one file (by ID or PATH), with its parents and children."""
    cat = _catalog(ctx, readonly=True)
    rec = cat.get_file(_file_ref(file))
    fields = [
        ("id", rec.id),
        ("path", rec.path),
        ("kind", rec.kind),
        ("run", _dash(rec.run)),
        ("seq", _dash(rec.seq)),
        ("size", f"{_dash(rec.size)} bytes"),
        ("adler32", _dash(rec.adler32)),
        ("events", _dash(rec.n_events)),
        ("t_min", _ns(rec.t_min)),
        ("t_max", _ns(rec.t_max)),
        ("software", _dash(rec.software_version)),
        ("created", rec.created.isoformat(timespec="seconds")),
        ("status", rec.status + (f" ({rec.status_reason})" if rec.status_reason else "")),
        ("meta", rec.meta or "-"),
    ]
    for key, value in fields:
        click.echo(f"{key + ':':<10} {value}")
    for title, related in (("parents", cat.parents(rec.id)), ("children", cat.children(rec.id))):
        click.echo(f"{title}:" + ("" if related else " -"))
        for r in related:
            click.echo(f"  {r.id}\t{r.kind}\t{r.path}")


@store.command("verify")
@click.argument("ids", nargs=-1, type=int)
@_catalog_option
@click.pass_context
def verify(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Recompute size and adler32 of files (all by default); exit 1 on any problem."""
    cat = _catalog(ctx, readonly=True)
    problems = cat.verify(list(ids) if ids else None)
    for p in problems:
        click.echo(str(p))
    if problems:
        raise SystemExit(1)
    click.echo("all files match the catalog", err=True)


@store.command("status")
@click.argument("file_id", type=int)
@click.argument("status", type=click.Choice(["good", "bad", "quarantined"]))
@click.option("--reason", default="", help="Why (shown to operators).")
@_catalog_option
@click.pass_context
def status(ctx: click.Context, file_id: int, status: str, reason: str) -> None:
    """Mark a file good, bad or quarantined."""
    _catalog(ctx).set_status(file_id, status, reason)


@store.group("dataset")
def dataset() -> None:
    """Named, versioned sets of files."""


@dataset.command("create")
@click.argument("name")
@click.option("--file", "file_ids", type=int, multiple=True, required=True, help="File id.")
@click.option("--version", type=int, default=1, show_default=True)
@click.option("--description", default="")
@_catalog_option
@click.pass_context
def dataset_create(
    ctx: click.Context, name: str, file_ids: tuple[int, ...], version: int, description: str
) -> None:
    """Create dataset NAME (a version never changes; identical re-creation is a no-op)."""
    rec = _catalog(ctx).create_dataset(
        name, version=version, file_ids=file_ids, description=description
    )
    click.echo(f"{rec.name} v{rec.version}: {len(rec.file_ids)} files")


@dataset.command("ls")
@_catalog_option
@click.pass_context
def dataset_ls(ctx: click.Context) -> None:
    """List datasets and their versions."""
    rows = [
        [d.name, str(d.version), str(len(d.file_ids)), f"{d.created:%Y-%m-%d}", d.description]
        for d in _catalog(ctx, readonly=True).datasets()
    ]
    if not rows:
        click.echo("no datasets", err=True)
        return
    click.echo(_table(rows, ["name", "version", "files", "created", "description"]))
