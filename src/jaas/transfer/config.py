"""Sites, links and replication rules from one YAML file, validated with file:line: key errors.

Example::

    hop_penalty: 0.3          # cost added per extra hop when routes are compared
    sites:
      DETECTOR: {tier: 0, root: /data/dropbox-out}
      CENTRAL:  {tier: 0, root: "root://127.0.0.1:1094//data", intermediate: true}
      CNAF:     {tier: 1, root: /srv/cnaf, intermediate: true}
      JINR:     {tier: 1, root: /srv/jinr}
    links:
      - {from: CENTRAL, to: JINR, disabled: true}        # a cut link
      - {from: CENTRAL, to: IN2P3, via: [CNAF]}          # forced route
      - {from: CENTRAL, to: CNAF, success: 0.99}         # static quality, overrides measurements
      - {from: CENTRAL, to: CNAF, max_active: 2}         # at most 2 copies at once on the link
    parallel: 4               # copies at once (a bounded thread pool); sites take max_active too
    rules:
      - {name: raw-t1, kind: raw, copies: 3, sites: [CNAF, JINR, IN2P3], deadline_hours: 6}
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from jaas._yaml import Lines, line_of, load_yaml_lines
from jaas.errors import ConfigError

__all__ = ["Link", "Rule", "Site", "Topology", "load_topology", "parse_topology"]

PROTOCOLS = ("file", "root", "https")
CHECKSUMS = ("adler32", "md5", "crc32c")


@dataclasses.dataclass(frozen=True)
class Site:
    """A storage site: ``root`` is a local directory, ``root://host:port//path`` or ``https://``."""

    name: str
    tier: int
    root: str
    protocols: tuple[str, ...]
    checksums: tuple[str, ...] = ("adler32",)
    intermediate: bool = False
    max_active: int | None = None  # copies at once from or to the site (None: no limit)

    @property
    def scheme(self) -> str:
        if self.root.startswith("root://"):
            return "root"
        if self.root.startswith("https://"):
            return "https"
        return "file"


@dataclasses.dataclass(frozen=True)
class Link:
    """An override of the link ``src -> dst``: cut, forced route, or static success rate."""

    src: str
    dst: str
    disabled: bool = False
    via: tuple[str, ...] | None = None
    success: float | None = None
    max_active: int | None = None  # copies at once on the link (None: no limit)


@dataclasses.dataclass(frozen=True)
class Rule:
    """Every file of ``kind`` (or of ``dataset``) gets ``copies`` verified copies at ``sites``."""

    name: str
    copies: int
    sites: tuple[str, ...]
    kind: str | None = None
    dataset: str | None = None
    deadline_hours: float = 24.0


@dataclasses.dataclass(frozen=True)
class Topology:
    sites: dict[str, Site]
    links: dict[tuple[str, str], Link]
    rules: tuple[Rule, ...]
    hop_penalty: float = 0.3
    max_hops: int = 3
    source: str = "<memory>"
    parallel: int = 1

    def link(self, src: str, dst: str) -> Link:
        return self.links.get((src, dst), Link(src, dst))

    def site(self, name: str) -> Site:
        try:
            return self.sites[name]
        except KeyError:
            raise ConfigError(f"unknown site {name!r}; known: {', '.join(self.sites)}") from None


class _Checker:
    def __init__(self, name: str, lines: Lines) -> None:
        self.name = name
        self.lines = lines

    def fail(self, loc: tuple[Any, ...], message: str) -> ConfigError:
        line = line_of(self.lines, loc)
        key = ".".join(str(k) for k in loc) or "(top)"
        where = f"{self.name}:{line}" if line is not None else self.name
        return ConfigError(f"{where}: {key}: {message}")

    def mapping(self, value: Any, loc: tuple[Any, ...], allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(loc, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail((*loc, key), f"unknown key; expected one of {sorted(allowed)}")
        return value

    def typed(self, value: Any, loc: tuple[Any, ...], kind: type | tuple[type, ...]) -> Any:
        if isinstance(value, bool) and kind is not bool and bool not in _tuple(kind):
            raise self.fail(loc, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(loc, f"expected {_kind_name(kind)}, got {value!r}")
        return value

    def names(self, value: Any, loc: tuple[Any, ...], known: dict[str, Site]) -> tuple[str, ...]:
        if isinstance(value, str):
            if value not in known:
                raise self.fail(loc, f"unknown site {value!r}; known: {', '.join(known)}")
            return (value,)
        if not isinstance(value, list) or not value:
            raise self.fail(loc, "expected a non-empty list of site names")
        for i, item in enumerate(value):
            if item not in known:
                raise self.fail((*loc, i), f"unknown site {item!r}; known: {', '.join(known)}")
        return tuple(value)

    def positive(self, value: Any, loc: tuple[Any, ...]) -> int | None:
        """An optional integer >= 1."""
        if value is None:
            return None
        if self.typed(value, loc, int) < 1:
            raise self.fail(loc, f"expected an integer >= 1, got {value}")
        return int(value)


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _tuple(kind))


def parse_topology(text: str, source: str | os.PathLike[str] = "<text>") -> Topology:
    """Parse and validate the sites/links/rules YAML ``text``.

    Raises:
        ConfigError: ``file:line: key: what is wrong``.
    """
    data, lines = load_yaml_lines(text, source)
    c = _Checker(os.fspath(source), lines)
    top = c.mapping(
        data if data is not None else {},
        (),
        {"sites", "links", "rules", "hop_penalty", "max_hops", "parallel"},
    )
    raw_sites = c.mapping(top.get("sites", {}), ("sites",), set(top.get("sites", {}) or {}))
    if not raw_sites:
        raise c.fail(("sites",), "at least one site is needed")
    sites: dict[str, Site] = {}
    keys = {"tier", "root", "protocols", "checksums", "intermediate", "max_active"}
    for name, spec in raw_sites.items():
        loc: tuple[Any, ...] = ("sites", name)
        spec = c.mapping(spec, loc, keys)
        if "root" not in spec:
            raise c.fail(loc, "missing key 'root' (a directory, root://... or https://...)")
        root = c.typed(spec["root"], (*loc, "root"), str)
        tier = c.typed(spec.get("tier", 1), (*loc, "tier"), int)
        scheme = Site(str(name), tier, root, ()).scheme
        protocols = spec.get("protocols", [scheme])
        if not isinstance(protocols, list) or not all(p in PROTOCOLS for p in protocols):
            raise c.fail((*loc, "protocols"), f"expected a list out of {list(PROTOCOLS)}")
        checksums = spec.get("checksums", ["adler32"])
        if not isinstance(checksums, list) or "adler32" not in checksums:
            raise c.fail((*loc, "checksums"), "expected a list that includes adler32")
        bad = [x for x in checksums if x not in CHECKSUMS]
        if bad:
            raise c.fail(
                (*loc, "checksums"), f"unknown checksum {bad[0]!r}; known {list(CHECKSUMS)}"
            )
        inter = c.typed(spec.get("intermediate", False), (*loc, "intermediate"), bool)
        active = c.positive(spec.get("max_active"), (*loc, "max_active"))
        sites[str(name)] = Site(
            str(name), tier, root, tuple(protocols), tuple(checksums), inter, active
        )

    links: dict[tuple[str, str], Link] = {}
    raw_links = top.get("links", []) or []
    if not isinstance(raw_links, list):
        raise c.fail(("links",), "expected a list of {from, to, ...} mappings")
    for i, spec in enumerate(raw_links):
        loc = ("links", i)
        spec = c.mapping(spec, loc, {"from", "to", "disabled", "via", "success", "max_active"})
        for key in ("from", "to"):
            if key not in spec:
                raise c.fail(loc, f"missing key {key!r}")
        src = c.names(spec["from"], (*loc, "from"), sites)[0]
        dst = c.names(spec["to"], (*loc, "to"), sites)[0]
        if src == dst:
            raise c.fail((*loc, "to"), "a link joins two different sites")
        via = c.names(spec["via"], (*loc, "via"), sites) if "via" in spec else None
        if via is not None and (src in via or dst in via):
            raise c.fail((*loc, "via"), "a forced route cannot pass through its own ends")
        success = spec.get("success")
        if success is not None:
            c.typed(success, (*loc, "success"), (int, float))
            if not 0.0 <= success <= 1.0:
                raise c.fail((*loc, "success"), f"expected a rate in [0, 1], got {success}")
            success = float(success)
        disabled = c.typed(spec.get("disabled", False), (*loc, "disabled"), bool)
        if (src, dst) in links:
            raise c.fail(loc, f"link {src} -> {dst} is given twice")
        active = c.positive(spec.get("max_active"), (*loc, "max_active"))
        links[(src, dst)] = Link(src, dst, disabled, via, success, active)

    rules: list[Rule] = []
    raw_rules = top.get("rules", []) or []
    if not isinstance(raw_rules, list):
        raise c.fail(("rules",), "expected a list of rules")
    for i, spec in enumerate(raw_rules):
        loc = ("rules", i)
        spec = c.mapping(
            spec, loc, {"name", "kind", "dataset", "copies", "sites", "deadline_hours"}
        )
        if "sites" not in spec:
            raise c.fail(loc, "missing key 'sites'")
        names = c.names(spec["sites"], (*loc, "sites"), sites)
        copies = c.typed(spec.get("copies", len(names)), (*loc, "copies"), int)
        if not 1 <= copies <= len(names):
            raise c.fail((*loc, "copies"), f"expected 1..{len(names)} (the number of sites listed)")
        kind = spec.get("kind")
        dataset = spec.get("dataset")
        if kind is None and dataset is None:
            raise c.fail(loc, "a rule needs 'kind' (e.g. raw) or 'dataset'")
        if kind is not None:
            c.typed(kind, (*loc, "kind"), str)
        if dataset is not None:
            c.typed(dataset, (*loc, "dataset"), str)
        deadline = c.typed(spec.get("deadline_hours", 24.0), (*loc, "deadline_hours"), (int, float))
        if deadline <= 0:
            raise c.fail((*loc, "deadline_hours"), "expected a positive number of hours")
        name = c.typed(spec.get("name", f"rule{i}"), (*loc, "name"), str)
        rules.append(Rule(name, copies, names, kind, dataset, float(deadline)))

    penalty = c.typed(top.get("hop_penalty", 0.3), ("hop_penalty",), (int, float))
    if penalty < 0:
        raise c.fail(("hop_penalty",), "expected a number >= 0")
    max_hops = c.typed(top.get("max_hops", 3), ("max_hops",), int)
    if max_hops < 1:
        raise c.fail(("max_hops",), "expected an integer >= 1")
    parallel = c.positive(top.get("parallel", 1), ("parallel",)) or 1
    return Topology(
        sites, links, tuple(rules), float(penalty), max_hops, os.fspath(source), parallel
    )


def load_topology(path: str | os.PathLike[str]) -> Topology:
    """Read and validate a sites YAML file (see the module docstring for the format)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    return parse_topology(text, p)
