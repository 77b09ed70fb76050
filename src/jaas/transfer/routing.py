"""Choose the route of a transfer: direct, or through intermediate sites.

A link's cost is ``-ln(p)`` for its success rate ``p`` (measured successes and failures
in the database with a prior of 0.95 weighing like 2 attempts, or the static ``success``
of a link override) plus the expected copy time (bytes / measured throughput, 10 minutes
= 1). A route costs the sum of its links plus ``hop_penalty`` per extra hop. Disabled
links are never used; a forced route (``via``) replaces the search for that pair.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping

from jaas.transfer.config import Topology

__all__ = ["LinkQuality", "Route", "choose_routes", "link_cost"]

PRIOR_SUCCESS = 0.95  # success rate assumed for a link never measured (weight of 2 attempts)
DEFAULT_THROUGHPUT = 100e6  # bytes/s assumed for a link never measured
FAILED_PENALTY = 1.0  # cost added per failed attempt of the same request on a link


@dataclasses.dataclass(frozen=True)
class LinkQuality:
    successes: int = 0
    failures: int = 0
    bytes: float = 0.0
    seconds: float = 0.0

    @property
    def success_rate(self) -> float:
        return (self.successes + 2 * PRIOR_SUCCESS) / (self.successes + self.failures + 2)

    @property
    def throughput(self) -> float:
        return (
            self.bytes / self.seconds if self.seconds > 0 and self.bytes > 0 else DEFAULT_THROUGHPUT
        )


@dataclasses.dataclass(frozen=True)
class Route:
    """A whole path ``sites[0] -> ... -> sites[-1]``, tried and retried as one object."""

    sites: tuple[str, ...]
    cost: float

    @property
    def hops(self) -> list[tuple[str, str]]:
        return list(itertools.pairwise(self.sites))

    @property
    def via(self) -> tuple[str, ...]:
        return self.sites[1:-1]

    def __str__(self) -> str:
        return " -> ".join(self.sites)


def link_cost(
    topo: Topology, quality: Mapping[tuple[str, str], LinkQuality], src: str, dst: str, size: int
) -> float:
    """Cost of one link (``math.inf`` when disabled)."""
    link = topo.link(src, dst)
    if link.disabled:
        return math.inf
    q = quality.get((src, dst), LinkQuality())
    p = link.success if link.success is not None else q.success_rate
    if p <= 0:
        return math.inf
    return -math.log(p) + size / q.throughput / 600.0


def _paths(topo: Topology, src: str, dst: str) -> Iterable[tuple[str, ...]]:
    forced = topo.link(src, dst).via
    if forced is not None:
        yield (src, *forced, dst)
        return
    inter = [s.name for s in topo.sites.values() if s.intermediate and s.name not in (src, dst)]

    def walk(path: tuple[str, ...]) -> Iterable[tuple[str, ...]]:
        for nxt in (dst, *inter):
            if nxt in path:
                continue
            new = (*path, nxt)
            if nxt == dst:
                yield new
            elif len(new) - 1 < topo.max_hops:
                yield from walk(new)

    yield from walk((src,))


def choose_routes(
    topo: Topology,
    quality: Mapping[tuple[str, str], LinkQuality],
    sources: Iterable[str],
    dst: str,
    size: int = 0,
    failed: Mapping[tuple[str, str], int] | None = None,
) -> list[Route]:
    """Usable routes from any of ``sources`` to ``dst``, cheapest first (empty: none).

    ``failed`` counts this request's own failed attempts per link: each adds
    ``FAILED_PENALTY`` to the link, so a retried request tries the next-best path.
    """
    failed = failed or {}
    routes: dict[tuple[str, ...], Route] = {}
    for src in sources:
        if src == dst:
            continue
        for path in _paths(topo, src, dst):
            if len(path) - 1 > topo.max_hops:
                continue
            cost = sum(link_cost(topo, quality, a, b, size) for a, b in itertools.pairwise(path))
            cost += FAILED_PENALTY * sum(failed.get(h, 0) for h in itertools.pairwise(path))
            if math.isfinite(cost):
                cost += topo.hop_penalty * (len(path) - 2)
                routes[path] = Route(path, cost)
    return sorted(routes.values(), key=lambda r: (r.cost, len(r.sites), r.sites))
