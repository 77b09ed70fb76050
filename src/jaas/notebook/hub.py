"""The multi-user service: JupyterHub configured for jaas, with one shared middleware.

``configure(c, hub_settings())`` fills a JupyterHub config object (what
``deploy/jupyterhub/jupyterhub_config.py`` and ``jaas hub`` do): configurable-http-proxy
on ``JAAS_HUB_IP:JAAS_HUB_PORT``, the local process spawner (every user a JupyterLab
server in ``JAAS_HUB_DIR/home/NAME``), per-user limits enforced in cgroups, the
authenticator, and one hub-managed service, ``jaas-cluster``: a Dask cluster with the
jaas file ownership and column cache (``jaas hub middleware``). Every user's kernel
gets ``JAAS_SCHEDULER`` (so ``ds.ibd()`` runs on the shared cluster: a second user's
first query is warm),
``JAAS_DATA`` (opened as ``ds``) and its own ``JAAS_CACHE_BYTES``.

Settings (environment of the hub; a bad value is a one-line ``ConfigError``):

==============================  ========================================================
``JAAS_HUB_IP`` / ``_PORT``     public address of the proxy (``127.0.0.1:8000``)
``JAAS_HUB_API_PORT``           the hub's own port (8081); ``JAAS_HUB_PROXY_API_PORT``
                                the proxy's REST API (8001)
``JAAS_HUB_DIR``                state: database, cookie secret, users' homes
                                (``~/.jaas/hub``)
``JAAS_HUB_AUTH``               ``dummy`` (one machine; ``JAAS_HUB_PASSWORD`` shared),
                                ``pam`` (system accounts) or ``oidc`` (facility IAM)
``JAAS_HUB_USERS`` / ``_ADMINS``  comma-separated allowed users / admins
``JAAS_HUB_OIDC_*``             ``AUTHORIZE_URL``, ``TOKEN_URL``, ``USERDATA_URL``,
                                ``CLIENT_ID``, ``CLIENT_SECRET``, ``CALLBACK_URL``;
                                optional ``SCOPE``, ``USERNAME_CLAIM``
``JAAS_HUB_MEM_LIMIT`` / ``CPU``  per-user server limits (``4G``, ``2``), enforced by
                                the kernel: each user's server and kernels run in
                                their own cgroup (``jaas.notebook.cgroups``); the hub
                                refuses to start if it cannot make one
``JAAS_HUB_CACHE_BYTES``        column-cache budget of every user kernel (``1GiB``)
``JAAS_HUB_SCHEDULER``          use this running cluster instead of starting one
``JAAS_HUB_WORKERS``            workers of the hub's cluster (2),
                                ``JAAS_HUB_WORKER_MEMORY`` (``auto``),
                                ``JAAS_HUB_SCHEDULER_PORT`` (8786)
``JAAS_HUB_PROXY``              configurable-http-proxy executable (default: the one
                                ``make hub-proxy`` installs, else on ``PATH``)
==============================  ========================================================
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaas.errors import ConfigError
from jaas.notebook.lab import STARTUP
from jaas.settings import parse_bytes

__all__ = ["AUTHS", "CONFIG_FILE", "HubSettings", "configure", "hub_settings", "user_env"]

AUTHS = ("dummy", "pam", "oidc")
OIDC_KEYS = ("AUTHORIZE_URL", "TOKEN_URL", "USERDATA_URL", "CLIENT_ID", "CLIENT_SECRET",
             "CALLBACK_URL")  # fmt: skip
SERVICE = "jaas-cluster"
_MEM_RE = re.compile(r"\d+(\.\d+)?[KMGT]?")  # JupyterHub's ByteSpecification

# What `jaas hub` runs with `jupyterhub -f`; deploy/jupyterhub/jupyterhub_config.py is
# the same file.
CONFIG_FILE = '''\
"""JupyterHub for jaas: `jupyterhub -f jupyterhub_config.py` (settings: JAAS_HUB_*).

See docs/jupyter.md and jaas.notebook.hub for every setting.
"""

from jaas.notebook.hub import configure, hub_settings

configure(c, hub_settings())  # type: ignore[name-defined]  # noqa: F821
'''


@dataclass(frozen=True)
class HubSettings:
    """The hub's settings, parsed (see the module docstring for the variables)."""

    ip: str = "127.0.0.1"
    port: int = 8000
    api_port: int = 8081
    proxy_api_port: int = 8001
    state_dir: Path = field(default_factory=lambda: Path.home() / ".jaas" / "hub")
    auth: str = "dummy"
    users: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    password: str | None = None
    oidc: Mapping[str, str] = field(default_factory=dict)
    mem_limit: str | None = None
    cpu_limit: float | None = None
    cache_bytes: int = 2**30
    data: str | None = None
    scheduler: str | None = None
    workers: int = 2
    worker_memory: str = "auto"
    scheduler_port: int = 8786
    proxy: str | None = None

    @property
    def scheduler_address(self) -> str:
        """The cluster every kernel uses: the external one, or the hub's service."""
        return self.scheduler or f"tcp://{self.ip}:{self.scheduler_port}"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{name}={text!r}: give a port number 1..65535")
    return int(text)


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in env.get(name, "").split(",") if n.strip())


def _proxy_default() -> str | None:
    here = Path(__file__).resolve().parents[3] / "deploy" / "jupyterhub" / "node_modules"
    local = here / ".bin" / "configurable-http-proxy"
    return str(local) if local.exists() else shutil.which("configurable-http-proxy")


def hub_settings(environ: Mapping[str, str] | None = None) -> HubSettings:
    """Read the ``JAAS_HUB_*`` variables (default: the process environment).

    Raises:
        ConfigError: a bad value or an incomplete authenticator configuration.
    """
    env = os.environ if environ is None else environ

    def text(name: str) -> str | None:
        return env.get(name, "").strip() or None

    auth = (text("JAAS_HUB_AUTH") or "dummy").lower()
    if auth not in AUTHS:
        raise ConfigError(f"JAAS_HUB_AUTH={auth!r}: give one of {', '.join(AUTHS)}")
    oidc: dict[str, str] = {}
    if auth == "oidc":
        missing = [f"JAAS_HUB_OIDC_{k}" for k in OIDC_KEYS if not text(f"JAAS_HUB_OIDC_{k}")]
        if missing:
            raise ConfigError(f"JAAS_HUB_AUTH=oidc needs {', '.join(missing)}")
        oidc = {k: str(text(f"JAAS_HUB_OIDC_{k}")) for k in OIDC_KEYS}
        oidc["SCOPE"] = text("JAAS_HUB_OIDC_SCOPE") or "openid profile email"
        oidc["USERNAME_CLAIM"] = text("JAAS_HUB_OIDC_USERNAME_CLAIM") or "preferred_username"
    cpu = text("JAAS_HUB_CPU_LIMIT")
    try:
        cpu_limit = None if cpu is None else float(cpu)
    except ValueError:
        raise ConfigError(f"JAAS_HUB_CPU_LIMIT={cpu!r}: give a number of cores") from None
    if cpu_limit is not None and cpu_limit <= 0:
        raise ConfigError(f"JAAS_HUB_CPU_LIMIT={cpu!r}: give a number of cores > 0")
    mem = text("JAAS_HUB_MEM_LIMIT")
    if mem is not None and not _MEM_RE.fullmatch(mem):
        raise ConfigError(f"JAAS_HUB_MEM_LIMIT={mem!r}: give bytes with K, M, G or T, e.g. 4G")
    workers = text("JAAS_HUB_WORKERS") or "2"
    if not workers.isdigit() or int(workers) < 1:
        raise ConfigError(f"JAAS_HUB_WORKERS={workers!r}: give a number of workers >= 1")
    cache = text("JAAS_HUB_CACHE_BYTES")
    scheduler = text("JAAS_HUB_SCHEDULER")
    if scheduler is not None and "://" not in scheduler:
        raise ConfigError(f"JAAS_HUB_SCHEDULER={scheduler!r}: give an address tcp://HOST:PORT")
    state = text("JAAS_HUB_DIR")
    return HubSettings(
        ip=text("JAAS_HUB_IP") or "127.0.0.1",
        port=_port(env, "JAAS_HUB_PORT", 8000),
        api_port=_port(env, "JAAS_HUB_API_PORT", 8081),
        proxy_api_port=_port(env, "JAAS_HUB_PROXY_API_PORT", 8001),
        state_dir=Path(state).expanduser() if state else Path.home() / ".jaas" / "hub",
        auth=auth,
        users=_names(env, "JAAS_HUB_USERS"),
        admins=_names(env, "JAAS_HUB_ADMINS"),
        password=text("JAAS_HUB_PASSWORD"),
        oidc=oidc,
        mem_limit=mem,
        cpu_limit=cpu_limit,
        cache_bytes=2**30 if cache is None else parse_bytes(cache, "JAAS_HUB_CACHE_BYTES"),
        data=text("JAAS_DATA"),
        scheduler=scheduler,
        workers=int(workers),
        worker_memory=text("JAAS_HUB_WORKER_MEMORY") or "auto",
        scheduler_port=_port(env, "JAAS_HUB_SCHEDULER_PORT", 8786),
        proxy=text("JAAS_HUB_PROXY") or _proxy_default(),
    )


def user_env(hs: HubSettings, username: str) -> dict[str, str]:
    """The jaas environment of ``username``'s server and kernels."""
    env = {
        "JAAS_SCHEDULER": hs.scheduler_address,
        "JAAS_CACHE_BYTES": str(hs.cache_bytes),
        "IPYTHONDIR": str(hs.state_dir / "home" / username / ".ipython"),
    }
    if hs.data is not None:
        env["JAAS_DATA"] = hs.data
    return env


def _pre_spawn(hs: HubSettings) -> Any:
    def hook(spawner: Any) -> None:
        """Make the user's home and the IPython startup file opening ``ds``."""
        name = spawner.user.name
        startup = Path(user_env(hs, name)["IPYTHONDIR"]) / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-jaas.py").write_text(STARTUP, encoding="utf-8")
        spawner.environment.update(user_env(hs, name))

    return hook


def _authenticator(c: Any, hs: HubSettings) -> None:
    allowed = set(hs.users) | set(hs.admins)
    if hs.auth == "dummy":
        c.JupyterHub.authenticator_class = "dummy"
        if hs.password is not None:
            c.DummyAuthenticator.password = hs.password
    elif hs.auth == "pam":
        c.JupyterHub.authenticator_class = "pam"
    else:
        o = hs.oidc
        c.JupyterHub.authenticator_class = "generic-oauth"
        g = c.GenericOAuthenticator
        g.authorize_url, g.token_url = o["AUTHORIZE_URL"], o["TOKEN_URL"]
        g.userdata_url, g.oauth_callback_url = o["USERDATA_URL"], o["CALLBACK_URL"]
        g.client_id, g.client_secret = o["CLIENT_ID"], o["CLIENT_SECRET"]
        g.scope = o["SCOPE"].split()
        g.username_claim = o["USERNAME_CLAIM"]
        g.login_service = "facility IAM"
    c.Authenticator.allowed_users = allowed
    c.Authenticator.admin_users = set(hs.admins)
    if not allowed and hs.auth == "dummy":
        c.Authenticator.allow_all = True  # one machine, anyone: only for a demo


def middleware_command(hs: HubSettings) -> list[str]:
    """The hub-managed service: the shared Dask cluster, in the foreground."""
    return [
        sys.executable, "-m", "jaas.cli.main", "hub", "middleware",
        "--host", hs.ip, "--port", str(hs.scheduler_port), "--workers", str(hs.workers),
        "--memory-limit", hs.worker_memory, "--state-dir", str(hs.state_dir / "cluster"),
    ]  # fmt: skip


def _limits(c: Any, hs: HubSettings) -> None:
    """Per-user limits in cgroups, or no limits; never limits that are not enforced."""
    if hs.mem_limit is None and hs.cpu_limit is None:
        c.JupyterHub.spawner_class = "simple"
        return
    from jaas.notebook.cgroups import cgroups

    name = f"jaas-hub-{hs.port}"
    try:
        cgroups(name)
    except ConfigError as e:
        raise ConfigError(
            f"JAAS_HUB_MEM_LIMIT/JAAS_HUB_CPU_LIMIT cannot be enforced here ({e}); run the hub "
            "as root on a machine with memory and cpu cgroups, or unset the limits"
        ) from None
    c.JupyterHub.spawner_class = "jaas.notebook.spawner.CgroupSpawner"
    c.CgroupSpawner.cgroup_name = name
    if hs.mem_limit is not None:
        c.Spawner.mem_limit = hs.mem_limit
    if hs.cpu_limit is not None:
        c.Spawner.cpu_limit = hs.cpu_limit


def configure(c: Any, hs: HubSettings) -> None:
    """Fill JupyterHub config ``c`` for jaas (see the module docstring).

    Raises:
        ConfigError: no configurable-http-proxy found; limits set that cannot be enforced.
    """
    if hs.proxy is None:
        raise ConfigError(
            "configurable-http-proxy not found: `make hub-proxy` (npm) or set JAAS_HUB_PROXY"
        )
    hs.state_dir.mkdir(parents=True, exist_ok=True)
    (hs.state_dir / "home").mkdir(exist_ok=True)
    c.JupyterHub.ip, c.JupyterHub.port = hs.ip, hs.port
    c.JupyterHub.hub_ip, c.JupyterHub.hub_port = hs.ip, hs.api_port
    c.ConfigurableHTTPProxy.api_url = f"http://{hs.ip}:{hs.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = [hs.proxy]
    c.JupyterHub.db_url = f"sqlite:///{hs.state_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(hs.state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(hs.state_dir / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    _authenticator(c, hs)
    _limits(c, hs)
    c.SimpleLocalProcessSpawner.home_dir_template = str(hs.state_dir / "home" / "{username}")
    c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    c.Spawner.default_url = "/lab"
    c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
    c.Spawner.http_timeout = 120
    c.Spawner.start_timeout = 180
    c.Spawner.pre_spawn_hook = _pre_spawn(hs)
    if hs.scheduler is None:
        c.JupyterHub.services = [{"name": SERVICE, "command": middleware_command(hs)}]
