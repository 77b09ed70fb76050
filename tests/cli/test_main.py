"""The root ``jaas`` command: version, help, error reporting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


# --- every command: one line naming the problem, exit 1; --debug shows the traceback ---


def _jaas(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    full_env = {k: v for k, v in os.environ.items() if k != "JAAS_DEBUG"}
    full_env.update({"JAAS_PROGRESS": "0", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "jaas.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
    )


def _one_line_error(out: Any, *needles: str) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from jaas.sim.run import simulate

    out = tmp_path_factory.mktemp("sim")
    cfg = {"duration_s": 2.0, "mode": "hit", "write_truth": False, "block_s": 2, "chunk_s": 2}
    simulate(cfg, out)
    (path,) = sorted((out / "raw").glob("*.raw"))
    return path


def test_output_path_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    out = _jaas("sim", str(tmp_path / "afile" / "sub"), "--duration", "1s")
    _one_line_error(out, "afile", "not a directory")


def test_unwritable_output_dir_is_one_line(raw_file: Path, tmp_path: Path) -> None:
    # /proc refuses new directories even to root, so this case is real for every user
    out = _jaas("convert", str(raw_file), "-o", "/proc/jaas-no-such-dir/x")
    _one_line_error(out, "/proc/jaas-no-such-dir")


def test_catalog_that_is_a_directory_is_one_line(raw_file: Path, tmp_path: Path) -> None:
    catdir = tmp_path / "catdir"
    catdir.mkdir()
    out = _jaas("convert", str(raw_file), "-o", str(tmp_path / "o"), "--catalog", str(catdir))
    _one_line_error(out, "catalog")


def test_catalog_that_is_not_a_database_is_one_line(raw_file: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("this is not sqlite\n" * 100)
    out = _jaas("convert", str(raw_file), "-o", str(tmp_path / "o"), "--catalog", str(junk))
    _one_line_error(out, "junk.db", "not a SQLite database")


def test_selection_error_is_reported_without_traceback(tmp_path: Path) -> None:
    from jaas.sim.run import simulate

    simulate({"duration_s": 60.0, "block_s": 60, "chunk_s": 60}, tmp_path / "s")
    out = _jaas("query", str(tmp_path / "s"), "--select", "E >> (")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("error: "), out.stderr
    assert "E >> (" in out.stderr  # the expression is shown with a caret under the problem


def test_cache_bytes_with_units_is_one_line(tmp_path: Path) -> None:
    from jaas.sim.run import simulate

    simulate({"duration_s": 60.0, "block_s": 60, "chunk_s": 60}, tmp_path / "s")
    out = _jaas("ibd", str(tmp_path / "s"), env={"JAAS_CACHE_BYTES": "4GB"})
    if out.returncode == 0:  # the engine may accept units: then it must work
        return
    _one_line_error(out, "4GB")


def test_start_past_2262_is_one_line(tmp_path: Path) -> None:
    out = _jaas("sim", str(tmp_path / "s"), "--start", "2300-01-01", "--duration", "10s")
    _one_line_error(out, "2262", "start 2300-01-01")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    args = ["sim", str(tmp_path / "afile" / "sub"), "--duration", "1s"]
    out = _jaas("--debug", *args)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "NotADirectoryError" in out.stderr
    out = _jaas(*args, env={"JAAS_DEBUG": "1"})
    assert "Traceback" in out.stderr


def test_main_in_process_prints_one_line_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAAS_DEBUG", raising=False)
    (tmp_path / "afile").write_text("x")
    args = ["sim", str(tmp_path / "afile" / "sub"), "--duration", "1s"]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a directory" in err and err.count("\n") == 1
    with pytest.raises(NotADirectoryError):
        main(["--debug", *args])
    with pytest.raises(SystemExit):  # --debug does not stick to the next call
        main(args)


def test_describe_database_and_unexpected_errors() -> None:
    import sqlalchemy.exc

    from jaas.cli.main import describe

    err = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("unable to open\nmore"))
    text = describe(err)
    assert "\n" not in text and "--catalog" in text and "unable to open" in text
    text = describe(OverflowError("int too large\nto convert"))
    assert "\n" not in text and "OverflowError" in text and "--debug" in text
    assert "permission denied" in describe(PermissionError(13, "Permission denied", "/x/y"))
