"""The hub's spawner: JupyterHub's local one, each user server in its own limited cgroup.

``jaas.notebook.hub.configure`` selects it when ``JAAS_HUB_MEM_LIMIT`` or
``JAAS_HUB_CPU_LIMIT`` is set (see ``jaas.notebook.cgroups`` for what is enforced).
Importing this module needs JupyterHub (the ``hub`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode

from jaas.notebook.cgroups import CGROUP_ROOT, Cgroups, cgroups

__all__ = ["CgroupSpawner"]


class CgroupSpawner(SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner whose servers run in a per-user cgroup with the limits.

    The limits are JupyterHub's own ``mem_limit`` and ``cpu_limit``; the server and every
    process it starts (kernels, terminals) share the user's cgroup. A failure to place
    the server in its cgroup fails the spawn (it never runs unlimited).
    """

    cgroup_name = Unicode("jaas-hub", config=True, help="the hub's cgroup, parent of users'")
    cgroup_root = Unicode(str(CGROUP_ROOT), config=True, help="the cgroup file system")

    def _cgroups(self, create: bool = True) -> Cgroups:
        return cgroups(self.cgroup_name, Path(self.cgroup_root), create=create)

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        base = super().make_preexec_fn(name)
        dirs = self._cgroups().create(name, self.mem_limit, self.cpu_limit)
        procs = [d / "cgroup.procs" for d in dirs]
        self.log.info("%s: cgroup %s (mem_limit=%s cpu_limit=%s)", name,
                      " ".join(map(str, dirs)), self.mem_limit, self.cpu_limit)  # fmt: skip

        def preexec() -> None:  # in the child before exec: it and its children are limited
            pid = str(os.getpid())
            for p in procs:
                with open(p, "w", encoding="ascii") as f:  # an error fails the spawn
                    f.write(pid)
            base()

        return preexec

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        self._cgroups(create=False).remove(self.user.name)

    def run_post_stop_hook(self) -> object:
        """After every stop, also of a server that ended by itself (JupyterHub then skips
        ``stop``): remove the user's cgroup, and the hub's when no other user has one."""
        try:
            groups = self._cgroups(create=False)
            groups.remove(self.user.name)
            groups.prune()
        except Exception:  # never keep JupyterHub from finishing the stop
            self.log.exception("%s: cannot remove the cgroup", self.user.name)
        return super().run_post_stop_hook()
