"""Transfer benchmarks (issue 12).

1. Deadline share: N files replicated CENTRAL -> JINR, IN2P3, CNAF with 25 % of the
   direct-link attempts failing at random (and, second, 25 % of the direct links down for
   a file's whole deadline window), multi-hop on versus off. Local sites, simulated clock.
3. Parallel: files/s replicated to two sites with 1 versus 4 copies at once (real XRootD
   servers when possible).
2. Throughput: one file copied CNAF -> JINR by the Replicator (third-party copy, checksums
   before and after) versus plain ``xrdcp --tpc only`` between the same real XRootD
   servers (needs root and Debian xrootd-server/xrootd-client; skipped otherwise).

    .venv/bin/python bench/bench_transfer.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jaas.store.catalog import Catalog
from jaas.transfer.config import parse_topology
from jaas.transfer.errors import TransferFailure
from jaas.transfer.replicator import Replicator, lfn_for

SITES = """\
max_hops: {hops}
sites:
  CENTRAL: {{tier: 0, root: {root}/central, intermediate: true}}
  CNAF: {{tier: 1, root: {root}/cnaf, intermediate: true}}
  JINR: {{tier: 1, root: {root}/jinr, intermediate: true}}
  IN2P3: {{tier: 1, root: {root}/in2p3, intermediate: true}}
rules:
  - {{name: t1, kind: raw, copies: 3, sites: [CNAF, JINR, IN2P3], deadline_hours: {deadline}}}
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def deadline_share(
    n_files: int, multihop: bool, seed: int = 7, mode: str = "outage", deadline_h: float = 2.0
) -> float:
    """Share of (file, site) requests done by the deadline.

    ``mode`` "outage": 25 % of the (file, direct link) pairs are down for the whole window;
    "random": every attempt on a direct link CENTRAL -> T1 fails with probability 0.25.
    """
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="jaas-bench-") as tmp:
        root = Path(tmp)
        topo = parse_topology(
            SITES.format(root=root, hops=3 if multihop else 1, deadline=deadline_h)
        )
        clock = Clock()
        down: set[tuple[str, str]] = set()  # (lfn, dst) whose direct link is down

        def faults(src: str, dst: str, lfn: str) -> None:
            if src != "CENTRAL":
                return
            if (lfn, dst) in down or (mode == "random" and rng.random() < 0.25):
                raise TransferFailure("connection timed out", "timeout")

        with Catalog(root / "catalog.db") as cat:
            rep = Replicator(cat, topo, clock=clock, faults=faults, max_attempts=8, relay=multihop)
            for seq in range(n_files):
                path = root / "central" / "raw" / "run5" / f"run5.{seq:03d}.raw"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(os.urandom(1024))
                rec = cat.add_file(path, kind="raw", run=5, seq=seq)
                rep.add_source(rec, "CENTRAL")
                for dst in ("CNAF", "JINR", "IN2P3"):
                    if mode == "outage" and rng.random() < 0.25:
                        down.add((lfn_for(rec), dst))
            rep.apply_rules()
            rep.run(advance=clock.advance, max_rounds=100_000)
            reqs = rep.ledger.requests()
            on_time = sum(
                r.state == "done" and r.deadline is not None and r.updated <= r.deadline
                for r in reqs
            )
            return on_time / len(reqs)


def files_per_second(n_files: int, parallel: int, size_kb: int = 256) -> tuple[float, str]:
    """Files/s replicated CENTRAL -> CNAF, JINR with ``parallel`` copies at once.

    Between real XRootD servers (third-party copies) when root and xrootd are there,
    else between local directories.
    """
    real = os.geteuid() == 0 and shutil.which("xrootd") is not None
    base = Path(tempfile.mkdtemp(prefix="jaas-bench-par-"))
    base.chmod(0o755)
    servers = []
    ns = None
    try:
        if real:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.transfer.xrd import Namespace, Server

            ns = Namespace()
            servers = [Server(ns, s, base) for s in ("CENTRAL", "CNAF", "JINR")]
            for srv in servers:
                srv.start()
            roots = {srv.site: f"'{srv.root}'" for srv in servers}
        else:
            roots = {s: str(base / s.lower()) for s in ("CENTRAL", "CNAF", "JINR")}
        topo = parse_topology(
            f"parallel: {parallel}\nsites:\n"
            + "".join(f"  {n}: {{root: {r}}}\n" for n, r in roots.items())
            + "rules:\n  - {kind: raw, copies: 2, sites: [CNAF, JINR]}\n"
        )
        with Catalog(base / "catalog.db") as cat:
            storages = {srv.site: srv.storage() for srv in servers} if real else None
            rep = Replicator(cat, topo, storages=storages)  # type: ignore[arg-type]
            for seq in range(n_files):
                local = base / f"run8.{seq:03d}.raw"
                local.write_bytes(os.urandom(size_kb << 10))
                rec = cat.add_file(local, kind="raw", run=8, seq=seq)
                rep.storages["CENTRAL"].upload(local, lfn_for(rec))
                rep.add_source(rec, "CENTRAL")
            rep.apply_rules()
            t0 = time.perf_counter()
            rep.run()
            seconds = time.perf_counter() - t0
            reqs = rep.ledger.requests()
            assert {r.state for r in reqs} == {"done"}, "not all copied"
        return n_files / seconds, "XRootD third-party copy" if real else "local directories"
    finally:
        for srv in servers:
            srv.kill()
        if ns is not None:
            ns.close()
        shutil.rmtree(base, ignore_errors=True)


def throughput(size_mb: int) -> tuple[float, float] | None:
    if os.geteuid() != 0 or shutil.which("xrootd") is None:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.transfer.xrd import Namespace, Server

    ns = Namespace()
    base = Path(tempfile.mkdtemp(prefix="jaas-xrd-bench-"))
    base.chmod(0o755)
    servers = [Server(ns, s, base) for s in ("CNAF", "JINR")]
    try:
        for s in servers:
            s.start()
        cnaf, jinr = servers
        local = base / "f.raw"
        local.write_bytes(os.urandom(size_mb << 20))
        topo = parse_topology(
            f"sites:\n  CNAF: {{root: '{cnaf.root}'}}\n  JINR: {{root: '{jinr.root}'}}\n"
            "rules:\n  - {kind: raw, copies: 1, sites: [JINR]}\n"
        )
        best_plain = best_rep = float("inf")
        for i in range(3):
            lfn = f"raw/plain{i}.raw"
            cnaf.storage().upload(local, lfn)
            t0 = time.perf_counter()
            subprocess.run(
                [
                    *ns.prefix,
                    "xrdcp",
                    "--nopbar",
                    "-f",
                    "--tpc",
                    "only",
                    cnaf.storage().url(lfn),
                    jinr.storage().url(lfn),
                ],
                check=True,
                capture_output=True,
                env=jinr.storage()._env(),  # same client settings
            )
            best_plain = min(best_plain, time.perf_counter() - t0)
            with Catalog(base / f"cat{i}.db") as cat:
                mine = base / f"run9.{i:03d}.raw"  # a new name: nothing at JINR yet
                shutil.copyfile(local, mine)
                rec = cat.add_file(mine, kind="raw", run=9, seq=i)
                rep = Replicator(
                    cat, topo, storages={"CNAF": cnaf.storage(), "JINR": jinr.storage()}
                )
                cnaf.storage().upload(mine, lfn_for(rec))
                rep.add_source(rec, "CNAF")
                rep.apply_rules()
                t0 = time.perf_counter()
                rep.run()
                best_rep = min(best_rep, time.perf_counter() - t0)
                [req] = rep.ledger.requests()
                assert req.state == "done" and rep.ledger.attempts(req.id), "nothing copied"
        return size_mb / best_rep, size_mb / best_plain
    finally:
        for s in servers:
            s.kill()
        ns.close()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--deadline-only", action="store_true", help="only the deadline shares")
    args = ap.parse_args()
    n = 20 if args.quick else 100
    for mode, hours, what in (
        ("random", 2.0, "25 % of direct-link attempts failing at random"),
        ("random", 0.02, "25 % of direct-link attempts failing at random"),
        ("outage", 2.0, "25 % of (file, direct link) pairs down for the whole deadline"),
    ):
        on = deadline_share(n, True, mode=mode, deadline_h=hours)
        off = deadline_share(n, False, mode=mode, deadline_h=hours)
        print(f"{what}, {n} files x 3 sites delivered by a {hours * 60:.0f} min deadline:")
        print(f"  multi-hop off: {off:.1%}   multi-hop on: {on:.1%}")
    if args.deadline_only:
        return
    nf = 12 if args.quick else 40
    for par in (1, 4):
        rate, where = files_per_second(nf, par)
        print(f"{nf} files x 2 sites, parallel {par}: {rate:.1f} files/s ({where})")
    res = throughput(16 if args.quick else 256)
    if res is None:
        print("throughput: skipped (needs root and xrootd-server/xrootd-client)")
    else:
        rep, plain = res
        print(
            f"throughput CNAF -> JINR: replicator {rep:.0f} MB/s, plain xrdcp --tpc {plain:.0f} "
            f"MB/s, ratio {rep / plain:.2f}"
        )


if __name__ == "__main__":
    main()
