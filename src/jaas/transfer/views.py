"""Read models of the transfer layer (typed, for the CLI now and a web portal later)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter

from jaas.transfer.ledger import Ledger, RequestRow

__all__ = [
    "ReplicaView",
    "RunSiteView",
    "RunView",
    "SiteView",
    "late_runs",
    "replica_table",
    "run_view",
    "runs",
    "site_views",
]


@dataclasses.dataclass(frozen=True)
class RunSiteView:
    site: str
    total: int
    verified: int
    waiting: dict[str, int]  # wait reason -> number of files
    failed: int
    stuck: int


@dataclasses.dataclass(frozen=True)
class RunView:
    run: int
    sites: tuple[RunSiteView, ...]
    deadline: float | None
    late: bool  # past the deadline and not every copy verified

    @property
    def safe(self) -> bool:
        return all(s.verified == s.total for s in self.sites)

    def summary(self) -> str:
        """``run 12: 40/40 files at CNAF verified, 38/40 at JINR, 2 waiting for hop via CNAF``."""
        parts = []
        for i, s in enumerate(self.sites):
            text = (
                f"{s.verified}/{s.total} files at {s.site} verified"
                if i == 0
                else (f"{s.verified}/{s.total} at {s.site}")
            )
            parts.append(text)
            parts += [f"{n} {reason}" for reason, n in sorted(s.waiting.items())]
            if s.failed:
                parts.append(f"{s.failed} failed at {s.site}")
            if s.stuck:
                parts.append(f"{s.stuck} stuck at {s.site}")
        late = " — LATE: not safely replicated after its deadline" if self.late else ""
        return f"run {self.run}: " + ", ".join(parts) + late


def _short(reason: str | None) -> str:
    text = reason or "waiting"
    return text.split(" (", 1)[0] if text.startswith(tuple("abcdefghijklmnopqrstuvwxyz")) else text


def run_view(ledger: Ledger, run: int, now: float) -> RunView:
    """Per destination: how many files of ``run`` are verified, waiting (by reason), failed."""
    reqs = ledger.requests(run=run)
    by_site: dict[str, list[RequestRow]] = {}
    for r in reqs:
        by_site.setdefault(r.dest, []).append(r)
    sites = []
    for site, rows in by_site.items():
        waiting = Counter(
            _short(r.wait_reason) for r in rows if r.state not in ("done", "failed", "stuck")
        )
        sites.append(
            RunSiteView(
                site,
                len(rows),
                sum(r.state == "done" for r in rows),
                dict(waiting),
                sum(r.state == "failed" for r in rows),
                sum(r.state == "stuck" for r in rows),
            )
        )
    deadlines = [r.deadline for r in reqs if r.deadline is not None]
    deadline = max(deadlines) if deadlines else None
    view = RunView(run, tuple(sites), deadline, False)
    late = deadline is not None and now > deadline and not view.safe
    return dataclasses.replace(view, late=late)


def runs(ledger: Ledger) -> list[int]:
    return sorted({r.run for r in ledger.requests() if r.run is not None})


def late_runs(ledger: Ledger, now: float) -> list[RunView]:
    """The alert: runs not safely replicated after their deadline."""
    return [v for v in (run_view(ledger, r, now) for r in runs(ledger)) if v.late]


@dataclasses.dataclass(frozen=True)
class ReplicaView:
    file_id: int
    lfn: str
    site: str
    status: str
    checksum: str | None
    verified: dt.datetime | None
    route: str


def replica_table(ledger: Ledger) -> list[ReplicaView]:
    """Every copy the transfer layer knows of, with its verification and route."""
    names = {r.file_id: r.lfn for r in ledger.requests()}
    return [
        ReplicaView(
            r.file_id,
            names.get(r.file_id, r.url),
            r.site,
            r.status,
            r.checksum,
            r.verified,
            r.route,
        )
        for r in ledger.replicas()
    ]


@dataclasses.dataclass(frozen=True)
class SiteView:
    site: str
    replicas_ok: int
    quarantined: int
    requests_open: int
    links_out: dict[str, tuple[int, int]]  # dst -> (successes, failures)


def site_views(ledger: Ledger, sites: list[str]) -> list[SiteView]:
    reps = ledger.replicas()
    reqs = ledger.requests()
    quality = ledger.link_quality()
    out = []
    for s in sites:
        out.append(
            SiteView(
                s,
                sum(r.site == s and r.status == "ok" for r in reps),
                sum(r.site == s and r.status == "quarantined" for r in reps),
                sum(r.dest == s and r.state not in ("done", "failed") for r in reqs),
                {d: (q.successes, q.failures) for (a, d), q in quality.items() if a == s},
            )
        )
    return out
