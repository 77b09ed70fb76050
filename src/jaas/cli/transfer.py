"""``jaas transfer``: sites, replication status, rules, retries, intake and the demo."""

from __future__ import annotations

import time
from pathlib import Path

import click

from jaas.errors import ConfigError
from jaas.store.catalog import Catalog
from jaas.transfer.config import Topology, load_topology
from jaas.transfer.demo import format_replicas, run_demo
from jaas.transfer.intake import intake_dropbox
from jaas.transfer.ledger import Ledger
from jaas.transfer.replicator import Replicator
from jaas.transfer.states import Event, step
from jaas.transfer.views import late_runs, replica_table, run_view, runs, site_views

__all__ = ["transfer"]

_SITES = click.argument("sites_yaml", type=click.Path(dir_okay=False, path_type=Path))


def _catalog(ctx: click.Context) -> Catalog:
    obj = ctx.ensure_object(dict)
    if obj.get("catalog") is None:
        url = obj.get("catalog_url")
        obj["catalog"] = Catalog(url) if url else Catalog.default()
        ctx.find_root().call_on_close(obj["catalog"].close)
    cat: Catalog = obj["catalog"]
    return cat


def _replicator(ctx: click.Context, topo: Topology) -> Replicator:
    return Replicator(_catalog(ctx), topo)


_CATALOG = "Catalog URL or SQLite path; the transfer tables live in the same database."


@click.group()
@click.option("--catalog", "catalog_url", envvar="JAAS_CATALOG", help=_CATALOG)
@click.pass_context
def transfer(ctx: click.Context, catalog_url: str | None) -> None:
    """Data management: sites, replication rules, transfers and their status.

    SITES_YAML describes sites, link overrides and rules (see docs/transfer.md). Try
    `jaas transfer demo /tmp/td` for a one-machine scenario without services.
    """
    ctx.ensure_object(dict)["catalog_url"] = catalog_url


@transfer.command("sites")
@_SITES
@click.pass_context
def sites_cmd(ctx: click.Context, sites_yaml: Path) -> None:
    """List the sites with their storage, protocols and replica counts."""
    topo = load_topology(sites_yaml)
    views = {v.site: v for v in site_views(Ledger(_catalog(ctx).engine), list(topo.sites))}
    for s in topo.sites.values():
        v = views[s.name]
        hop = " intermediate" if s.intermediate else ""
        click.echo(
            f"{s.name:<10} tier {s.tier}  {s.root}  [{','.join(s.protocols)}]{hop}  "
            f"{v.replicas_ok} replicas, {v.quarantined} quarantined, {v.requests_open} open"
        )
    for (a, b), link in sorted(topo.links.items()):
        what = "disabled" if link.disabled else ""
        if link.via:
            what = f"via {' -> '.join(link.via)}"
        if link.success is not None:
            what += f" success {link.success:g}"
        click.echo(f"link {a} -> {b}: {what.strip()}")


@transfer.command("rules")
@_SITES
def rules_cmd(sites_yaml: Path) -> None:
    """List the replication rules."""
    for r in load_topology(sites_yaml).rules:
        what = f"kind {r.kind}" if r.kind else f"dataset {r.dataset}"
        click.echo(
            f"{r.name}: every {what} file gets {r.copies} verified copies at "
            f"{', '.join(r.sites)} within {r.deadline_hours:g} h"
        )


@transfer.command("run")
@_SITES
@click.option("--rounds", type=int, default=100, show_default=True, help="Steps at most.")
@click.pass_context
def run_cmd(ctx: click.Context, sites_yaml: Path, rounds: int) -> None:
    """Create the requests of the rules and step the due ones until none is due."""
    rep = _replicator(ctx, load_topology(sites_yaml))
    click.echo(f"{rep.apply_rules()} new requests")
    rep.run(max_rounds=rounds)
    for r in runs(rep.ledger):
        click.echo(run_view(rep.ledger, r, time.time()).summary())


@transfer.command("intake")
@_SITES
@click.argument("dropbox", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--central", required=True, help="Site that receives the raw files.")
@click.option(
    "--keepup-dropdir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Hand each registered file to keep-up: the directory `jaas kup watch` polls.",
)
@click.pass_context
def intake_cmd(
    ctx: click.Context, sites_yaml: Path, dropbox: Path, central: str, keepup_dropdir: Path | None
) -> None:
    """Move completed files (NAME + NAME.done) from DROPBOX to the central site."""
    from jaas.transfer.keepup import KeepUpDropDir
    from jaas.transfer.storage import XRootDStorage

    topo = load_topology(sites_yaml)
    topo.site(central)
    rep = _replicator(ctx, topo)
    hook = None
    if keepup_dropdir is not None:
        store = rep.storages[central]
        hook = KeepUpDropDir(
            keepup_dropdir, central=store if isinstance(store, XRootDStorage) else None
        )
    for r in intake_dropbox(dropbox, rep, central=central, ingest=hook):
        click.echo(f"{'ok' if r.ok else 'KEPT'} {r.name}: {r.message}")


@transfer.command("status")
@_SITES
@click.option("--run", "run_number", type=int, help="One run only.")
@click.option("--replicas", is_flag=True, help="Also print every replica with its route.")
@click.pass_context
def status_cmd(
    ctx: click.Context, sites_yaml: Path, run_number: int | None, replicas: bool
) -> None:
    """Per run: verified copies per site, waiting requests by reason, late runs."""
    load_topology(sites_yaml)
    ledger = Ledger(_catalog(ctx).engine)
    now = time.time()
    for r in [run_number] if run_number is not None else runs(ledger):
        click.echo(run_view(ledger, r, now).summary())
    late = late_runs(ledger, now)
    if late:
        click.echo(f"ALERT: {len(late)} run(s) not safely replicated after their deadline")
    if replicas:
        click.echo(format_replicas(replica_table(ledger)))


@transfer.command("retry")
@_SITES
@click.option("--request", "request_ids", type=int, multiple=True, help="Request id (repeatable).")
@click.option("--stuck", is_flag=True, help="All stuck and failed requests.")
@click.pass_context
def retry_cmd(
    ctx: click.Context, sites_yaml: Path, request_ids: tuple[int, ...], stuck: bool
) -> None:
    """Put failed or stuck requests back in the queue."""
    load_topology(sites_yaml)
    if not request_ids and not stuck:
        raise ConfigError("give --request ID or --stuck")
    ledger = Ledger(_catalog(ctx).engine)
    rows = ledger.requests(states=["stuck", "failed"]) if stuck else []
    for rid in request_ids:
        row = ledger.get(rid)
        if row is None:
            raise ConfigError(f"no transfer request {rid}")
        rows.append(row)
    now = time.time()
    for row in rows:
        ledger.save(row.id, step(row.machine, Event("reset"), now=now), now)
        click.echo(f"request {row.id} ({row.lfn} -> {row.dest}) queued again")


@transfer.command("audit")
@_SITES
@click.option("--site", help="One site only.")
@click.pass_context
def audit_cmd(ctx: click.Context, sites_yaml: Path, site: str | None) -> None:
    """Re-checksum replicas; quarantine bad ones and queue their re-copy."""
    topo = load_topology(sites_yaml)
    if site is not None:
        topo.site(site)
    bad = _replicator(ctx, topo).audit(site)
    for file_id, where in bad:
        click.echo(f"file {file_id} at {where}: adler32 mismatch, quarantined, re-copy queued")
    click.echo(f"{len(bad)} bad replica(s)")


@transfer.command("demo")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--files", type=int, default=4, show_default=True, help="Files in the run.")
def demo_cmd(directory: Path, files: int) -> None:
    """One-machine scenario: sites as directories, a cut link routed via CNAF."""
    raise SystemExit(run_demo(directory, files=files, echo=click.echo))
