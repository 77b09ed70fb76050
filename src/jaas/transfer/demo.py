"""``jaas transfer demo DIR``: one machine, sites as directories, one direct link cut.

The detector's dropbox receives a run's files; intake moves them to CENTRAL, the rule
asks for copies at CNAF, JINR and IN2P3, and since CENTRAL -> JINR is cut, JINR is served
through CNAF. No services; a simulated clock so retries take no wall time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from jaas.errors import ConfigError
from jaas.store.catalog import Catalog
from jaas.transfer.config import load_topology
from jaas.transfer.intake import MARKER_SUFFIX, intake_dropbox
from jaas.transfer.replicator import Replicator
from jaas.transfer.views import ReplicaView, replica_table, run_view

__all__ = ["SITES_YAML", "format_replicas", "run_demo"]

SITES_YAML = """\
# jaas transfer demo: sites are local directories
hop_penalty: 0.3
sites:
  CENTRAL: {{tier: 0, root: {root}/central, intermediate: true}}
  CNAF:    {{tier: 1, root: {root}/cnaf, intermediate: true}}
  JINR:    {{tier: 1, root: {root}/jinr}}
  IN2P3:   {{tier: 1, root: {root}/in2p3}}
links:
  - {{from: CENTRAL, to: JINR, disabled: true}}   # the cut direct link
rules:
  - {{name: raw-to-tier1, kind: raw, copies: 3, sites: [CNAF, JINR, IN2P3], deadline_hours: 6}}
"""


class _Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def format_replicas(rows: list[ReplicaView]) -> str:
    head = ("file", "site", "status", "adler32", "verified", "route")
    table = [head] + [
        (
            r.lfn,
            r.site,
            r.status,
            r.checksum or "-",
            r.verified.strftime("%H:%M:%S") if r.verified else "-",
            r.route,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def run_demo(
    directory: Path, *, files: int = 4, run: int = 12, echo: Callable[[str], None] = print
) -> int:
    """Run the scenario in ``directory`` (must be empty or missing); return the exit status."""
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory}: not empty; give a new or empty directory")
    if not 1 <= files <= 1000:
        raise ConfigError(f"--files must be in 1..1000, got {files}")
    root = directory.resolve()
    dropbox = root / "detector" / "dropbox"
    dropbox.mkdir(parents=True)
    sites = root / "sites.yaml"
    sites.write_text(SITES_YAML.format(root=root), encoding="utf-8")
    topo = load_topology(sites)
    for seq in range(files):
        name = f"run{run}.{seq:03d}.raw"
        (dropbox / name).write_bytes(os.urandom(64 * 1024))
        (dropbox / f"{name}{MARKER_SUFFIX}").write_text("", encoding="utf-8")
    clock = _Clock()
    with Catalog(root / "catalog.db") as catalog:
        rep = Replicator(catalog, topo, clock=clock)
        ingested: list[str] = []
        results = intake_dropbox(dropbox, rep, central="CENTRAL", ingest=ingested.extend)
        ok = sum(r.ok for r in results)
        echo(
            f"intake: {ok}/{len(results)} files verified at CENTRAL, registered, handed to keep-up"
        )
        echo(f"rules: {rep.apply_rules()} transfer requests (link CENTRAL -> JINR is cut)")
        rep.run_once()
        first = run_view(rep.ledger, run, clock()).summary()
        rep.run(advance=clock.advance)
        view = run_view(rep.ledger, run, clock())
        if first != view.summary():
            echo(f"after one round: {first}")
        echo(view.summary())
        echo("")
        echo(format_replicas(replica_table(rep.ledger)))
        echo("")
        echo(f"sites: {sites}   catalog: {root / 'catalog.db'}")
        return 0 if view.safe and ok == len(results) else 1
