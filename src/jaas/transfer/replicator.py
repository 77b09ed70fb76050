"""Carry out replication: rules make requests, requests move one hop per step.

Each step of a request runs the pure state machine (states.py) and records what happened:
an attempt per hop (with error class and message), the link's measured quality, and the
replica with its adler32 and verification time. A route through an intermediate site keeps
the hop copy as a *temporary* replica until its last consumer is finished, then removes it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath

from jaas.errors import TransferError
from jaas.store.catalog import Catalog
from jaas.store.records import FileRecord
from jaas.transfer.concurrency import Limits
from jaas.transfer.config import Rule, Topology
from jaas.transfer.errors import TransferFailure
from jaas.transfer.ledger import Ledger, RequestRow
from jaas.transfer.routing import choose_routes
from jaas.transfer.states import TERMINAL, Event, RequestState, step
from jaas.transfer.storage import Storage, TokenSource, copy_file, open_storage

__all__ = ["Faults", "Replicator", "lfn_for"]

Faults = Callable[[str, str, str], None]  # (src site, dst site, lfn): raise TransferFailure


def lfn_for(rec: FileRecord) -> str:
    """The logical file name of a catalogued file: ``raw/run12/run12.000.raw``."""
    name = PurePosixPath(rec.path.replace(os.sep, "/")).name
    if rec.run is not None:
        return f"{rec.kind}/run{rec.run}/{name}"
    return f"{rec.kind}/{name}"


class Replicator:
    """Replication of catalogued files between the sites of ``topo``.

    Args:
        catalog: the file catalog; the transfer tables live in its database.
        topo: sites, links and rules.
        storages: storage per site (default: from each site's root).
        clock: seconds since the epoch (tests and the demo pass a fake one).
        faults: called before every hop; may raise TransferFailure (fault injection).
        max_attempts: attempts before a request is ``stuck``.
        relay: copy from any verified replica and through intermediate sites (multi-hop);
            False copies only from the origin, directly.
        parallel: copies at once (default: the topology's ``parallel``), held to the
            ``max_active`` of each site and link.
    """

    def __init__(
        self,
        catalog: Catalog,
        topo: Topology,
        *,
        storages: dict[str, Storage] | None = None,
        clock: Callable[[], float] = time.time,
        faults: Faults | None = None,
        max_attempts: int = 5,
        tokens: TokenSource | None = None,
        relay: bool = True,
        parallel: int | None = None,
    ) -> None:
        self.catalog = catalog
        self.topo = topo
        self.ledger = Ledger(catalog.engine)
        self.storages = storages or {n: open_storage(s, tokens) for n, s in topo.sites.items()}
        self.clock = clock
        self.faults = faults
        self.max_attempts = max_attempts
        self.relay = relay
        self.parallel = parallel if parallel is not None else topo.parallel
        self.limits = Limits()

    # ------------------------------------------------------------------ sources
    def add_source(self, rec: FileRecord, site: str) -> None:
        """Record that ``site`` holds a verified copy of ``rec`` (after intake)."""
        if rec.adler32 is None:
            raise TransferError(f"{rec.path}: no checksum in the catalog")
        store = self.storages[site]
        lfn = lfn_for(rec)
        found = store.checksum(lfn)
        if found != rec.adler32:
            raise TransferError(f"{site}:{lfn}: adler32 {found} differs from catalog {rec.adler32}")
        self._register(rec.id, site, lfn, rec.adler32, "origin")

    def _register(self, file_id: int, site: str, lfn: str, checksum: str, route: str) -> None:
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        url = self.storages[site].url(lfn)
        self.ledger.set_replica(
            file_id, site, url, checksum=checksum, status="ok", route=route, verified=now
        )
        replica = self.catalog.add_replica(file_id, url, endpoint=site)
        self.catalog.mark_replica_verified(replica.id, now)

    # ------------------------------------------------------------------ rules
    def rule_files(self, rule: Rule) -> list[FileRecord]:
        return self.catalog.files(kind=rule.kind, dataset=rule.dataset)

    def apply_rules(self) -> int:
        """Create the missing requests of every rule; the number created."""
        now = self.clock()
        created = 0
        for rule in self.topo.rules:
            for rec in self.rule_files(rule):
                if rec.adler32 is None:
                    continue
                for dest in rule.sites[: rule.copies]:
                    _, new = self.ledger.ensure_request(
                        file_id=rec.id,
                        dest=dest,
                        lfn=lfn_for(rec),
                        checksum=rec.adler32,
                        size=rec.size,
                        run=rec.run,
                        rule=rule.name,
                        now=now,
                        deadline=now + rule.deadline_hours * 3600.0,
                    )
                    created += new
        return created

    # ------------------------------------------------------------------ running
    def run_once(self) -> int:
        """One step of every due request; the number of requests stepped.

        With ``parallel`` > 1 the files are stepped on that many threads at once (the
        requests of one file stay in order on one thread, so its hop copies and their
        cleanup never race); ``Limits`` holds each copy to the site and link limits.
        """
        due = self.ledger.due(self.clock())
        by_file: dict[int, list[RequestRow]] = {}
        for req in due:
            by_file.setdefault(req.file_id, []).append(req)
        if self.parallel <= 1 or len(by_file) <= 1:
            for req in due:
                self.process(req)
            return len(due)
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="jaas-transfer") as pool:
            for done in [pool.submit(self._process_all, reqs) for reqs in by_file.values()]:
                done.result()
        return len(due)

    def _process_all(self, reqs: list[RequestRow]) -> None:
        for req in reqs:
            self.process(req)

    def run(self, *, max_rounds: int = 1000, advance: Callable[[float], None] | None = None) -> int:
        """Step until nothing is due; with ``advance`` (a fake clock) jump to the next retry."""
        rounds = 0
        while rounds < max_rounds:
            rounds += 1
            if self.run_once():
                continue
            wake = self.ledger.next_wakeup()
            if wake is None or advance is None:
                break
            advance(max(0.0, wake - self.clock()))
        return rounds

    def _save(self, req: RequestRow, st: RequestState) -> None:
        self.ledger.save(req.id, st, self.clock())

    def process(self, req: RequestRow) -> RequestState:
        """Advance one request by one hop (or to a wait, retry, done or failure)."""
        now = self.clock()
        st = req.machine
        if st.state in TERMINAL or st.state == "stuck":
            return st
        if st.state == "retrying":
            st = step(st, Event("retry_due"), now=now)
        try:
            if st.state in ("queued", "verifying") or not st.route:
                if st.state != "queued":
                    st = step(st, Event("wait", "re-routing"), now=now)
                if self._present(req):
                    st = step(st, Event("present"), now=now)
                    self._save(req, st)
                    self._cleanup(req.file_id)
                    return st
                sources = self._sources(req)
                if not sources:
                    st = step(
                        st, Event("wait", "no source: no verified copy to copy from"), now=now
                    )
                    self._save(req, st)
                    return st
                failed: dict[tuple[str, str], int] = {}
                for att in self.ledger.attempts(req.id):
                    a, _, b = att.hop.partition(" -> ")
                    if not att.ok and b:
                        failed[(a, b)] = failed.get((a, b), 0) + 1
                routes = choose_routes(
                    self.topo,
                    self.ledger.link_quality(),
                    sources,
                    req.dest,
                    req.size or 0,
                    failed,
                )
                if not routes:
                    why = f"link down: no usable route from {', '.join(sources)} to {req.dest}"
                    st = step(st, Event("wait", why), now=now)
                    self._save(req, st)
                    return st
                route = routes[0]
                st = step(st, Event("submit", route=route.sites), now=now)
                st = step(st, Event("start", f"copying on route {route}"), now=now)
            elif st.state == "submitted":
                st = step(st, Event("start", "copying"), now=now)
            st = self._hop(req, st)
        except TransferFailure as exc:
            if not getattr(exc, "recorded", False):  # failed before a copy: still an attempt
                route_text = " -> ".join(st.route)
                where = f"check at {req.dest}"
                self.ledger.add_attempt(req.id, route_text, where, (now, self.clock()), exc)
            ev = Event("error", exc.reason, error_class=exc.error_class)
            st = step(st, ev, now=self.clock(), max_attempts=self.max_attempts)
            self._save(req, st if st.state != "retrying" else _reroute(st))
            if st.state in TERMINAL:
                self._cleanup(req.file_id)
            return st
        self._save(req, st)
        if st.state in TERMINAL:
            self._cleanup(req.file_id)
        return st

    def _present(self, req: RequestRow) -> bool:
        rep = self.ledger.replica(req.file_id, req.dest)
        if rep is not None and rep.status in ("ok", "temporary") and rep.checksum == req.checksum:
            if rep.status == "temporary":
                self._register(req.file_id, req.dest, req.lfn, req.checksum, rep.route)
            return True
        if rep is not None and rep.status == "quarantined":
            return False
        store = self.storages[req.dest]
        if store.stat(req.lfn) is not None and store.checksum(req.lfn) == req.checksum:
            self._register(req.file_id, req.dest, req.lfn, req.checksum, "found at destination")
            return True
        return False

    def _sources(self, req: RequestRow) -> list[str]:
        return [
            r.site
            for r in self.ledger.replicas(req.file_id)
            if r.status in ("ok", "temporary")
            and r.site != req.dest
            and r.checksum == req.checksum
            and (self.relay or r.route == "origin")
        ]

    def _hop(self, req: RequestRow, st: RequestState) -> RequestState:
        route = st.route
        have = set(self._sources(req))
        idx = max((i for i, s in enumerate(route[:-1]) if s in have), default=None)
        if idx is None:
            raise TransferFailure(f"no verified copy left on route {' -> '.join(route)}", "unknown")
        src, dst = route[idx], route[idx + 1]
        hop = f"{src} -> {dst}"
        started = self.clock()
        t0 = time.monotonic()
        try:
            with self.limits.slot(self.topo, src, dst):
                self._copy_verified(req, src, dst)
        except TransferFailure as exc:
            self.ledger.record_link(src, dst, False, 0, 0)
            self.ledger.add_attempt(req.id, " -> ".join(route), hop, (started, self.clock()), exc)
            exc.recorded = True  # type: ignore[attr-defined]
            raise
        seconds = time.monotonic() - t0
        self.ledger.record_link(src, dst, True, float(req.size or 0), seconds)
        self.ledger.add_attempt(req.id, " -> ".join(route), hop, (started, self.clock()))
        provenance = f"{self._provenance(req.file_id, src)} -> {dst}"
        if dst != req.dest:
            url = self.storages[dst].url(req.lfn)
            verified = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            self.ledger.set_replica(
                req.file_id,
                dst,
                url,
                checksum=req.checksum,
                status="temporary",
                route=" -> ".join(route[: idx + 2]),
                verified=verified,
            )
            return step(st, Event("hop", f"waiting for hop via {dst}"), now=self.clock())
        st = step(st, Event("copied"), now=self.clock())
        self._register(req.file_id, dst, req.lfn, req.checksum, provenance)
        return step(st, Event("verified"), now=self.clock())

    def _provenance(self, file_id: int, site: str) -> str:
        """The route by which the copy at ``site`` arrived (just ``site`` for an origin)."""
        rep = self.ledger.replica(file_id, site)
        return rep.route if rep is not None and " -> " in rep.route else site

    def _copy_verified(self, req: RequestRow, src: str, dst: str) -> None:
        """Copy one hop with adler32 checked at the source before and the destination after."""
        source = self.storages[src]
        found = source.checksum(req.lfn)
        if found != req.checksum:
            self.quarantine(req.file_id, src, f"adler32 {found} != {req.checksum}")
            raise TransferFailure(
                f"source {src} has adler32 {found}, expected {req.checksum}: quarantined",
                "checksum_mismatch",
            )
        if self.faults is not None:
            self.faults(src, dst, req.lfn)
        target = self.storages[dst]
        copy_file(source, target, req.lfn)
        after = target.checksum(req.lfn)
        if after != req.checksum:
            target.delete(req.lfn)
            raise TransferFailure(
                f"copy at {dst} has adler32 {after}, expected {req.checksum}", "checksum_mismatch"
            )

    def _cleanup(self, file_id: int) -> None:
        """Remove temporary hop copies that no unfinished request of the file still needs."""
        live = [r for r in self.ledger.requests(file_id=file_id) if r.state not in TERMINAL]
        needed = {s for r in live for s in r.route} | {r.dest for r in live}
        for rep in self.ledger.replicas(file_id):
            if rep.status == "temporary" and rep.site not in needed:
                req = next(iter(self.ledger.requests(file_id=file_id)), None)
                if req is not None:
                    self.storages[rep.site].delete(req.lfn)
                self.ledger.drop_replica(file_id, rep.site)

    # ------------------------------------------------------------------ verification
    def quarantine(self, file_id: int, site: str, why: str) -> None:
        """Mark a replica as bad and queue its re-copy when the site is a destination."""
        self.ledger.set_replica_status(file_id, site, "quarantined")
        req = self.ledger.find(file_id, site)
        if req is not None and req.state in ("done", "failed", "stuck"):
            st = step(
                req.machine, Event("reset", f"replica corrupt ({why}): re-copy"), now=self.clock()
            )
            self._save(req, st)

    def audit(self, site: str | None = None) -> list[tuple[int, str]]:
        """Re-checksum every ok replica (of ``site``); quarantine the bad ones; return them."""
        bad = []
        for rep in self.ledger.replicas(site=site):
            if rep.status != "ok":
                continue
            req = self.ledger.find(rep.file_id, rep.site)
            lfn = req.lfn if req is not None else lfn_for(self.catalog.get_file(rep.file_id))
            try:
                found: str | None = self.storages[rep.site].checksum(lfn)
            except TransferFailure:
                found = None
            if found != rep.checksum:
                self.quarantine(rep.file_id, rep.site, f"adler32 {found} != {rep.checksum}")
                bad.append((rep.file_id, rep.site))
            else:
                verified = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
                self.ledger.set_replica(
                    rep.file_id,
                    rep.site,
                    rep.url,
                    checksum=rep.checksum,
                    status="ok",
                    route=rep.route,
                    verified=verified,
                )
        return bad


def _reroute(st: RequestState) -> RequestState:
    """A retried request chooses its route again (the path is retried as a whole)."""
    return RequestState(st.state, st.wait_reason, st.attempts, st.next_try, ())
