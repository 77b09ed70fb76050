"""The root ``jaas`` command: version, help, error reporting."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

import jaas
from jaas.cli.main import cli, main


def test_version_matches_package() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert jaas.__version__ in result.output


def test_every_listed_command_has_help() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    names = cli.list_commands(None)  # type: ignore[arg-type]
    for name in names:
        assert name in top.output
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, sub.output
        assert "Usage:" in sub.output
        group = cli.get_command(None, name)  # type: ignore[arg-type]
        if hasattr(group, "list_commands"):
            for child in group.list_commands(None):  # type: ignore[union-attr]
                res = runner.invoke(cli, [name, child, "--help"])
                assert res.exit_code == 0, res.output


def test_unknown_command_fails_cleanly() -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


def test_installed_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jaas.cli.main", "--version"], capture_output=True, text=True
    )
    # the module is importable as a script entry point
    assert out.returncode == 0, out.stderr
