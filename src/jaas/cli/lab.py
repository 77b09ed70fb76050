"""``jaas lab``: start JupyterLab with the jaas kernel ready and a dataset preset."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import click

__all__ = ["lab"]


@click.command()
@click.argument("data", required=False, type=click.Path(path_type=Path))
@click.option("--port", default=8888, show_default=True, type=click.IntRange(0, 65535))
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--notebook-dir", default=".", show_default=True,
    type=click.Path(file_okay=False, path_type=Path), help="Directory JupyterLab shows.",
)  # fmt: skip
@click.option("--no-browser", is_flag=True, help="Do not open a web browser.")
@click.option("--dry-run", is_flag=True, help="Print the command and environment, do not start.")
def lab(
    data: Path | None, port: int, ip: str, notebook_dir: Path, no_browser: bool, dry_run: bool
) -> None:
    """Start JupyterLab where every new kernel has DATA open as `ds`.

    DATA is a directory of index files (a simulated run directory works). Kernels get
    JAAS_DATA and an IPython startup file (under .jaas-lab/) that runs
    `ds = jaas.open(os.environ["JAAS_DATA"])` and loads the jaas display hooks.
    Needs the notebook extra: pip install 'jaas[notebook]'.
    """
    from jaas.errors import ConfigError
    from jaas.notebook.lab import lab_command

    command = lab_command(data, port=port, ip=ip, notebook_dir=notebook_dir, browser=not no_browser)
    if dry_run:
        for key, value in sorted(command.env.items()):
            click.echo(f"{key}={shlex.quote(value)}")
        click.echo(shlex.join(command.argv))
        return
    import importlib.util

    if importlib.util.find_spec("jupyterlab") is None:
        raise ConfigError("JupyterLab is not installed: pip install 'jaas[notebook]'")
    command.write_startup()
    raise SystemExit(subprocess.call(command.argv, env={**os.environ, **command.env}))
