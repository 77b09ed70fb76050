"""End-of-run manifests: the files a run should have (with adler32) and whether the run is complete.

A manifest is a JSON or YAML file dropped with the run::

    {"run": 5, "files": [{"name": "run5_0000.raw", "adler32": "1a2b3c4d", "size": 256}]}

Registered manifests live in ``STATE_DIR/manifests/run<N>.json``. A run is complete when
every file of its manifest is ``done`` at every stage (current versions) and the adler32
of the ingested file equals the manifest's. The ingested checksum is the one the ingest
stage recorded (``meta.adler32`` of its result), else computed from the file (cached by
path, size and mtime in ``STATE_DIR/manifests/checksums.json``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jaas._io import adler32_file, atomic_path
from jaas.errors import ConfigError
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger

__all__ = [
    "Manifest",
    "ManifestEntry",
    "RunReport",
    "files_of_run",
    "is_manifest_name",
    "load_manifest",
    "register_manifest",
    "registered_manifests",
    "run_of_file",
    "run_reports",
    "write_manifest",
]

_ADLER = re.compile(r"^[0-9a-fA-F]{1,8}$")
_RUN_IN_NAME = re.compile(r"^run0*(\d+)[_.-]")
_SUFFIXES = (".manifest.json", ".manifest.yaml", ".manifest.yml")


@dataclass(frozen=True)
class ManifestEntry:
    """One expected file: its name, adler32 (8 hex digits) and optionally its size."""

    name: str
    adler32: str
    size: int | None = None


@dataclass(frozen=True)
class Manifest:
    """The files of one run, as the DAQ announced them."""

    run: int
    files: tuple[ManifestEntry, ...]
    source: str = ""

    def to_json(self) -> str:
        """The manifest as JSON (what :func:`register_manifest` stores)."""
        files = [
            {
                "name": e.name,
                "adler32": e.adler32,
                **({"size": e.size} if e.size is not None else {}),
            }
            for e in self.files
        ]
        return json.dumps({"run": self.run, "files": files}, indent=2)


def is_manifest_name(name: str) -> bool:
    """Whether a file name looks like a manifest (``*.manifest.json|yaml|yml``)."""
    return name.endswith(_SUFFIXES)


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a manifest; ConfigError naming the file and the bad entry.

    Example:
        >>> m = load_manifest("drop/run5.manifest.json")   # doctest: +SKIP
        >>> m.run, len(m.files)                            # doctest: +SKIP
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: cannot read the manifest: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ConfigError(f"{p}: expected a mapping with 'run' and a 'files' list")
    run = data.get("run")
    if not isinstance(run, int) or isinstance(run, bool) or run < 0:
        raise ConfigError(f"{p}: 'run' must be a non-negative integer, got {run!r}")
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(data["files"]):
        where = f"{p}: files[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{where}: expected a mapping with 'name' and 'adler32'")
        name, adler = item["name"], str(item.get("adler32", ""))
        if "/" in name or not name:
            raise ConfigError(f"{where}: 'name' must be a bare file name, got {name!r}")
        if not _ADLER.match(adler):
            raise ConfigError(f"{where} ({name}): 'adler32' must be hex digits, got {adler!r}")
        if name in seen:
            raise ConfigError(f"{where}: {name} is listed twice")
        seen.add(name)
        size = item.get("size")
        entries.append(
            ManifestEntry(name, adler.lower().zfill(8), None if size is None else int(size))
        )
    return Manifest(run, tuple(entries), str(p))


def write_manifest(
    path: str | os.PathLike[str], run: int, files: Iterable[str | os.PathLike[str]]
) -> Manifest:
    """Write the manifest of ``files`` (adler32 and size computed here), atomically."""
    entries = tuple(
        ManifestEntry(Path(f).name, adler32_file(f), Path(f).stat().st_size) for f in files
    )
    manifest = Manifest(run, entries, os.fspath(path))
    with atomic_path(path) as tmp:
        tmp.write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _dir(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / "manifests"


def register_manifest(state_dir: str | os.PathLike[str], path: str | os.PathLike[str]) -> Manifest:
    """Validate a manifest and store it as ``STATE_DIR/manifests/run<N>.json`` (a newer one
    for the same run replaces the older)."""
    manifest = load_manifest(path)
    with atomic_path(_dir(state_dir) / f"run{manifest.run}.json") as tmp:
        tmp.write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def registered_manifests(state_dir: str | os.PathLike[str]) -> list[Manifest]:
    """Every registered manifest, by run number."""
    d = _dir(state_dir)
    found = [load_manifest(p) for p in d.glob("run*.json")] if d.is_dir() else []
    return sorted(found, key=lambda m: m.run)


def run_of_file(name: str) -> int | None:
    """Run number in a file name like ``run5_0001.raw`` (None if the name has none)."""
    m = _RUN_IN_NAME.match(name)
    return int(m.group(1)) if m else None


def files_of_run(state_dir: str | os.PathLike[str], run: int, known: Iterable[str]) -> set[str]:
    """Files of ``run``: those of its manifest, plus the ``known`` names ``run<N>_...``."""
    names = {f for f in known if run_of_file(f) == run}
    for m in registered_manifests(state_dir):
        if m.run == run:
            names |= {e.name for e in m.files}
    return names


@dataclass
class RunReport:
    """Completeness of one run against its manifest."""

    run: int
    expected: int
    seen: dict[str, int]
    done: dict[str, int]
    missing: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every file done at every stage with a matching checksum."""
        return (
            not self.missing
            and not self.mismatched
            and all(n == self.expected for n in self.done.values())
        )


class _ChecksumCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.is_file():
            try:
                self.data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                self.data = {}
        self.dirty = False

    def adler32(self, file: Path) -> str | None:
        try:
            st = file.stat()
        except OSError:
            return None
        key = str(file)
        hit = self.data.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return str(hit[2])
        value = adler32_file(file)
        self.data[key] = [st.st_size, st.st_mtime_ns, value]
        self.dirty = True
        return value

    def save(self) -> None:
        if self.dirty:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(self.data), encoding="utf-8")


def _recorded_adler32(settings: KupSettings, stage: str, job: dict[str, Any]) -> str | None:
    result = settings.data / "logs" / stage / f"{job['file']}.{job['attempts']}.result.json"
    try:
        meta = json.loads(result.read_text(encoding="utf-8")).get("meta") or {}
    except (OSError, ValueError):
        return None
    value = meta.get("adler32")
    return str(value) if value else None


def run_reports(
    state_dir: str | os.PathLike[str], runs: Iterable[int] | None = None
) -> list[RunReport]:
    """Per registered run: files expected, seen and done per stage, missing and bad checksums.

    Example:
        >>> [r.complete for r in run_reports("kup/")]   # doctest: +SKIP
    """
    settings = KupSettings.load(state_dir)
    config = settings.pipeline()
    wanted = None if runs is None else set(runs)
    manifests = [m for m in registered_manifests(state_dir) if wanted is None or m.run in wanted]
    if not manifests:
        return []
    ledger = Ledger(settings.database, config)
    try:
        rows = ledger.jobs_of(e.name for m in manifests for e in m.files)
    finally:
        ledger.close()
    current = {s.name: s.version for s in config.stages}
    first = config.stages[0].name
    by_file: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if current.get(r["stage"]) == r["version"]:
            by_file.setdefault(r["file"], {})[r["stage"]] = r
    cache = _ChecksumCache(_dir(state_dir) / "checksums.json")
    reports = []
    for m in manifests:
        rep = RunReport(m.run, len(m.files), dict.fromkeys(current, 0), dict.fromkeys(current, 0))
        for e in m.files:
            jobs = by_file.get(e.name, {})
            if first not in jobs:
                rep.missing.append(e.name)
            for stage, job in jobs.items():
                rep.seen[stage] += 1
                rep.done[stage] += job["state"] == "done"
            ingest = jobs.get(first)
            if ingest is None or ingest["state"] != "done":
                continue
            actual = _recorded_adler32(settings, first, ingest)
            if actual is None and ingest["input_path"]:
                actual = cache.adler32(Path(ingest["input_path"]))
            if actual is None:
                rep.mismatched.append((e.name, e.adler32, "unreadable"))
            elif actual.lower().zfill(8) != e.adler32:
                rep.mismatched.append((e.name, e.adler32, actual))
        reports.append(rep)
    cache.save()
    return reports
