"""Per-user memory and CPU limits that the kernel enforces: one cgroup per user server.

JupyterHub's local spawners only export ``MEM_LIMIT``/``CPU_LIMIT``; nothing holds a
user to them. ``jaas.notebook.spawner.CgroupSpawner`` starts every user's single-user
server (and so its kernels, its children) inside its own cgroup,
``<hub's cgroup>/jaas-hub-PORT/USER``:

* cgroup v2 (one unified hierarchy): ``memory.max``, ``memory.swap.max = 0``, ``cpu.max``;
* cgroup v1 (separate ``memory`` and ``cpu`` hierarchies): ``memory.limit_in_bytes`` (and
  ``memory.memsw.limit_in_bytes`` where swap is accounted), ``cpu.cfs_quota_us`` over
  ``cpu.cfs_period_us``.

A process that takes the cgroup over its memory limit is killed by the kernel's OOM
killer inside that cgroup only (the largest process there, normally the kernel that
allocated); the hub and other users go on. CPU above the quota is throttled.

``cgroups()`` finds what this machine allows; when a limit is set and no cgroup can be
made and written (not root, no memory/cpu controller, a read-only cgroup file system),
the hub refuses to start with a ``ConfigError`` saying why, rather than run with limits
that are not enforced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jaas.errors import ConfigError

__all__ = ["CGROUP_ROOT", "Cgroups", "cgroups"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as {controller or "" (v2): path}."""
    out: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, names, path = parts
        for name in names.split(",") if names else [""]:
            out[name] = path
    return out


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value, encoding="ascii")
    except OSError as e:
        raise ConfigError(f"cannot write {value!r} to {path}: {e.strerror or e}") from None


@dataclass(frozen=True)
class Cgroups:
    """Where the hub makes its users' cgroups: v2 (one parent) or v1 (memory, cpu)."""

    version: int
    memory: Path  # the parent directory of the users' cgroups, memory hierarchy
    cpu: Path  # the same in the cpu hierarchy (v2: the same directory)

    def parents(self) -> list[Path]:
        return [self.memory] if self.memory == self.cpu else [self.memory, self.cpu]

    def user_dirs(self, user: str) -> list[Path]:
        """The user's cgroup directories (one in v2, two in v1)."""
        if not user or "/" in user or user in (".", ".."):
            raise ConfigError(f"user name {user!r} cannot name a cgroup")
        return [p / user for p in self.parents()]

    def create(self, user: str, mem_bytes: int | None, cpu: float | None) -> list[Path]:
        """Make (or reuse) ``user``'s cgroup with these limits; its directories.

        Raises:
            ConfigError: the cgroup cannot be made or a limit cannot be written.
        """
        dirs = self.user_dirs(user)
        for d in dirs:
            self._drain(d)
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"cannot make cgroup {d}: {e.strerror or e}") from None
        mem_dir, cpu_dir = dirs[0], dirs[-1]
        if self.version == 2:
            _write(mem_dir / "memory.max", "max" if mem_bytes is None else str(mem_bytes))
            if (mem_dir / "memory.swap.max").exists():
                _write(mem_dir / "memory.swap.max", "0" if mem_bytes is not None else "max")
            quota = "max" if cpu is None else str(max(1000, round(cpu * PERIOD_US)))
            _write(cpu_dir / "cpu.max", f"{quota} {PERIOD_US}")
        else:
            limit = "-1" if mem_bytes is None else str(mem_bytes)
            memsw = mem_dir / "memory.memsw.limit_in_bytes"
            if memsw.exists() and mem_bytes is None:
                _write(memsw, "-1")  # memsw must stay >= the memory limit: lift it first
            _write(mem_dir / "memory.limit_in_bytes", limit)
            if memsw.exists() and mem_bytes is not None:
                _write(memsw, limit)  # no swapping past the limit either
            _write(cpu_dir / "cpu.cfs_period_us", str(PERIOD_US))
            quota = "-1" if cpu is None else str(max(1000, round(cpu * PERIOD_US)))
            _write(cpu_dir / "cpu.cfs_quota_us", quota)
        return dirs

    def remove(self, user: str) -> None:
        """End what is left in ``user``'s cgroup (stray kernels) and remove it."""
        for d in self.user_dirs(user):
            self._drain(d)

    def prune(self) -> list[Path]:
        """Remove the users' cgroups that hold no process, then the parents if left empty.

        Ends nothing: a cgroup with a process in it (a server still running after its hub
        was killed) stays, and so does its parent. Returns the directories removed.
        """
        removed = []
        for parent in self.parents():
            children = [d for d in parent.iterdir() if d.is_dir()] if parent.is_dir() else []
            for d in [*children, parent]:
                try:
                    d.rmdir()  # a cgroup goes only without processes or child cgroups
                except OSError:
                    continue
                removed.append(d)
        return removed

    @staticmethod
    def pids(d: Path) -> list[int]:
        try:
            return [int(p) for p in (d / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    @classmethod
    def _drain(cls, d: Path, grace: float = 5.0) -> None:
        if not d.is_dir():
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in cls.pids(d):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while cls.pids(d) and time.monotonic() < deadline:
                time.sleep(0.1)
        with contextlib.suppress(OSError):
            d.rmdir()


def _enable(parent: Path, controllers: Iterable[str]) -> None:
    """v2: let ``parent``'s children use ``controllers``."""
    have = set((parent / "cgroup.subtree_control").read_text().split())
    want = [c for c in controllers if c not in have]
    if want:
        _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in want))


def _v2(root: Path, own: str, name: str, create: bool) -> Cgroups:
    available = set((root / "cgroup.controllers").read_text().split())
    missing = {"memory", "cpu"} - available
    if missing:
        raise ConfigError(f"cgroup v2 at {root} lacks the {', '.join(sorted(missing))} "
                          "controller")  # fmt: skip
    if not create:  # where an earlier call made it
        for base in (root / own.lstrip("/"), root):
            if (base / name).is_dir():
                return Cgroups(2, base / name, base / name)
        return Cgroups(2, root / name, root / name)
    errors = []
    # the hub's own cgroup when it may delegate (no processes of its own), else the root
    for base in dict.fromkeys([root / own.lstrip("/"), root]):
        try:
            parts = base.relative_to(root).parts
            for i in range(len(parts) + 1):  # every level from the root down to base
                _enable(root.joinpath(*parts[:i]), ("memory", "cpu"))
            parent = base / name
            parent.mkdir(exist_ok=True)
            _enable(parent, ("memory", "cpu"))
            return Cgroups(2, parent, parent)
        except (ConfigError, OSError) as e:
            errors.append(f"{base}: {e}")
    raise ConfigError("cannot delegate memory and cpu to a cgroup: " + "; ".join(errors))


def _v1(root: Path, own: dict[str, str], name: str, create: bool) -> Cgroups:
    dirs = {}
    for ctl, candidates in (("memory", ["memory"]), ("cpu", ["cpu", "cpu,cpuacct"])):
        mount = next((root / c for c in candidates if (root / c).is_dir()), None)
        if mount is None:
            raise ConfigError(f"no cgroup v1 {ctl} hierarchy under {root}")
        parent = mount / own.get(ctl, "/").lstrip("/") / name
        try:
            if create:
                parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot make cgroup {parent}: {e.strerror or e}") from None
        dirs[ctl] = parent
    return Cgroups(1, dirs["memory"], dirs["cpu"])


def cgroups(
    name: str, root: Path | None = None, proc_cgroup: str | None = None, create: bool = True
) -> Cgroups:
    """The parent of the users' cgroups, ``name`` under the hub's own cgroup (made, and
    its controllers enabled, unless ``create`` is false).

    Raises:
        ConfigError: this machine (or this user) cannot make memory and cpu cgroups.
    """
    root = CGROUP_ROOT if root is None else root
    if proc_cgroup is None:
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    own = _own_paths(proc_cgroup)
    try:
        if (root / "cgroup.controllers").exists():
            return _v2(root, own.get("", "/"), name, create)
        if (root / "memory").is_dir():
            return _v1(root, own, name, create)
    except OSError as e:
        raise ConfigError(f"cgroups at {root}: {e.strerror or e}") from None
    raise ConfigError(f"no cgroup file system (v1 or v2) at {root}")
