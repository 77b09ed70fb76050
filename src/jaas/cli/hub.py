"""``jaas hub run|check|middleware``: the multi-user JupyterHub and its shared cluster."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import click

__all__ = ["hub"]


@click.group()
def hub() -> None:
    """Multi-user JupyterHub whose users share one jaas Dask cluster (settings: JAAS_HUB_*).

    The same as `jupyterhub -f deploy/jupyterhub/jupyterhub_config.py`; see docs/jupyter.md.
    """


def _config_path() -> Path:
    from jaas.notebook.hub import CONFIG_FILE, hub_settings

    hs = hub_settings()
    hs.state_dir.mkdir(parents=True, exist_ok=True)
    path = hs.state_dir / "jupyterhub_config.py"
    path.write_text(CONFIG_FILE, encoding="utf-8")
    return path


@hub.command()
@click.option("--dry-run", is_flag=True, help="Print the command, do not start.")
def run(dry_run: bool) -> None:
    """Start JupyterHub (proxy, hub, the shared cluster service) in the foreground."""
    argv = [sys.executable, "-m", "jupyterhub", "-f", str(_config_path())]
    if dry_run:
        click.echo(shlex.join(argv))
        return
    check_installed()
    from jaas.notebook.hub import hub_settings

    raise SystemExit(supervise(argv, _config_path().parent, f"jaas-hub-{hub_settings().port}"))


def supervise(argv: list[str], cwd: Path, cgroup: str) -> int:
    """Run the hub until it exits, then remove its cgroups that are left empty.

    The hub runs in its own process group and gets SIGTERM/SIGINT once, from here (Ctrl-C
    reaches only this process), and is waited for, so that it stops its users' servers
    itself (``subprocess.call`` would kill it on Ctrl-C).
    A hub killed before it could remove its cgroups (``jaas-hub-PORT`` and its users')
    leaves them here; what still holds a process (a server left running) is kept.
    """
    proc = subprocess.Popen(argv, cwd=str(cwd), process_group=0)

    def forward(sig: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        _prune_cgroups(cgroup)


def _prune_cgroups(name: str) -> None:
    from jaas.errors import ConfigError
    from jaas.notebook.cgroups import cgroups

    try:
        removed = cgroups(name, create=False).prune()
    except (ConfigError, OSError):  # no cgroups here: the hub ran without limits
        return
    for d in removed:
        click.echo(f"jaas hub: removed cgroup {d}", err=True)


def check_installed() -> None:
    import importlib.util

    from jaas.errors import ConfigError

    if importlib.util.find_spec("jupyterhub") is None:
        raise ConfigError("JupyterHub is not installed: pip install 'jaas[hub]'")


@hub.command()
def check() -> None:
    """Load the configuration with JupyterHub itself and print what it set."""
    check_installed()
    from jupyterhub.app import JupyterHub

    from jaas.notebook.hub import hub_settings

    app = JupyterHub()
    app.load_config_file(str(_config_path()))
    c = app.config
    hs = hub_settings()
    click.echo(f"hub        http://{c.JupyterHub.ip}:{c.JupyterHub.port}/")
    click.echo(f"auth       {c.JupyterHub.authenticator_class}")
    click.echo(f"users      {', '.join(sorted(c.Authenticator.allowed_users)) or '(any)'}")
    click.echo(f"spawner    {c.JupyterHub.spawner_class}  limits mem={hs.mem_limit or '-'} "
               f"cpu={hs.cpu_limit or '-'} cache={hs.cache_bytes}")  # fmt: skip
    click.echo(f"cluster    {hs.scheduler_address}" + ("" if hs.scheduler else " (hub service)"))
    click.echo(f"proxy      {c.ConfigurableHTTPProxy.command[0]}")


@hub.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8786, show_default=True, type=click.IntRange(0, 65535))
@click.option("-n", "--workers", default=2, show_default=True, type=click.IntRange(1))
@click.option("--memory-limit", default="auto", show_default=True)
@click.option(
    "--state-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Where the cluster's addresses, pids and logs go.",
)  # fmt: skip
def middleware(host: str, port: int, workers: int, memory_limit: str, state_dir: Path) -> None:
    """Run the shared jaas Dask cluster in the foreground until SIGTERM (hub service)."""
    from jaas.cluster.local import start, stop

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    lc = start(workers, memory_limit=memory_limit, host=host, port=port, state_dir=state_dir)
    try:
        click.echo(f"jaas middleware: scheduler {lc.address}, {workers} worker(s)", err=True)
        sys.stderr.flush()
        done.wait()
    finally:
        stop(state_dir)
