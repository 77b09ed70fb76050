"""What ``jaas lab`` runs: JupyterLab with the jaas kernel ready and a dataset preset.

The kernel finds the data in ``JAAS_DATA``; a startup file in a private IPython
directory opens it as ``ds`` and loads the jaas display hooks, so the first cell of a
notebook can be ``ds.ibd()``. Nothing of the user's text is executed: the startup file
is fixed code reading the environment variable.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jaas.errors import ConfigError

__all__ = ["STARTUP", "LabCommand", "lab_command"]

STARTUP = """\
# written by `jaas lab`: open the preset dataset as `ds`
import jaas
import jaas.notebook
from jaas.settings import settings as _settings

if _settings().data is not None:
    ds = jaas.open(_settings().data)
"""


@dataclass(frozen=True)
class LabCommand:
    """The JupyterLab command line and the environment it needs."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ipython_dir: Path | None = None

    def write_startup(self) -> None:
        """Write the IPython startup file that opens the dataset."""
        if self.ipython_dir is None:
            return
        startup = self.ipython_dir / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-jaas.py").write_text(STARTUP, encoding="utf-8")


def lab_command(
    data: str | os.PathLike[str] | None,
    *,
    port: int = 8888,
    ip: str = "127.0.0.1",
    notebook_dir: str | os.PathLike[str] = ".",
    browser: bool = True,
    state_dir: str | os.PathLike[str] = ".jaas-lab",
) -> LabCommand:
    """The command starting JupyterLab with ``data`` (a directory or index file) preset.

    Raises:
        ConfigError: the data or notebook directory does not exist, bad port.
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is not in 0..65535")
    env: dict[str, str] = {}
    if data is not None:
        path = Path(data).expanduser()
        if not path.exists():
            raise ConfigError(
                f"data {os.fspath(data)!r} does not exist (a directory of index files)"
            )
        env["JAAS_DATA"] = str(path.resolve())
    nb_dir = Path(notebook_dir).expanduser()
    if not nb_dir.is_dir():
        raise ConfigError(f"notebook directory {os.fspath(notebook_dir)!r} is not a directory")
    ipython_dir = Path(state_dir).expanduser().resolve() / "ipython"
    env["IPYTHONDIR"] = str(ipython_dir)
    argv = [
        sys.executable, "-m", "jupyterlab", f"--ServerApp.ip={ip}", f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={nb_dir.resolve()}",
    ]  # fmt: skip
    if not browser:
        argv.append("--no-browser")
    return LabCommand(argv, env, ipython_dir)
