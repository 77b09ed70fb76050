"""`jaas lab`: argument handling, the command it builds, the kernel startup file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.main import cli
from jaas.errors import ConfigError
from jaas.notebook.lab import lab_command


def test_dry_run_prints_command_and_environment(sim_dir: Path, tmp_path: Path) -> None:
    out = CliRunner().invoke(
        cli, ["lab", str(sim_dir), "--port", "9123", "--no-browser", "--dry-run",
              "--notebook-dir", str(tmp_path)],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert f"JAAS_DATA={sim_dir.resolve()}" in lines
    assert lines[-1].split()[1:3] == ["-m", "jupyterlab"]
    assert "--ServerApp.port=9123" in lines[-1] and "--no-browser" in lines[-1]
    assert f"--ServerApp.root_dir={tmp_path.resolve()}" in lines[-1]


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        lab_command(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"not in 0\.\.65535"):
        lab_command(None, port=70000)
    with pytest.raises(ConfigError, match="is not a directory"):
        lab_command(None, notebook_dir=tmp_path / "nope")
    out = CliRunner().invoke(cli, ["lab", "--port", "-1", "--dry-run"])
    assert out.exit_code == 2 and "Traceback" not in out.output
    cmd = lab_command(None, notebook_dir=tmp_path, state_dir=tmp_path / "st")
    assert "JAAS_DATA" not in cmd.env and "--no-browser" not in cmd.argv


def test_startup_file_opens_the_dataset_in_ipython(sim_dir: Path, tmp_path: Path) -> None:
    cmd = lab_command(sim_dir, notebook_dir=tmp_path, state_dir=tmp_path / "state")
    cmd.write_startup()
    env = {**os.environ, **cmd.env, "PYTHONPATH": os.pathsep.join(sys.path)}
    code = "print('events', ds.n_events)"
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", "-c", code], env={**env, "IPYTHONDIR": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # without the startup file `ds` is undefined
    assert "NameError" in proc.stdout + proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", "-c", code], env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import jaas

    assert f"events {jaas.open(sim_dir).n_events}" in proc.stdout
