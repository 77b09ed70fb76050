"""The one settings module: every JAAS_* variable, with units and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jaas.errors import ConfigError
from jaas.settings import VARIABLES, parse_bytes, settings

SRC = Path(__file__).resolve().parents[1] / "src" / "jaas"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4GiB", 4 * 2**30),
        ("4 GB", 4 * 10**9),
        ("512MiB", 512 * 2**20),
        ("1.5kib", 1536),
        ("4096", 4096),
        ("10B", 10),
    ],
)
def test_byte_counts_with_units(text: str, value: int) -> None:
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["4G", "lots", "-1", "4 GiB extra", "1e9"])
def test_bad_byte_count_names_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^JAAS_CACHE_BYTES='.*': not a byte count"):
        settings({"JAAS_CACHE_BYTES": text})


def test_defaults_when_unset_or_empty() -> None:
    s = settings({"JAAS_CATALOG": "", "JAAS_PROGRESS": " "})
    assert s.catalog is None
    assert s.progress is None
    assert s.cache_bytes is None
    assert s.cluster_dir == Path.home() / ".jaas" / "cluster"


def test_every_variable_is_read(tmp_path: Path) -> None:
    env = {
        "JAAS_CATALOG": "postgresql://db/jaas",
        "JAAS_DATA_DIR": str(tmp_path / "data"),
        "JAAS_CACHE_BYTES": "1GiB",
        "JAAS_CLUSTER_DIR": str(tmp_path / "cl"),
        "JAAS_PROGRESS": "off",
        "JAAS_KUP_CATALOG": "sqlite:///k.db",
        "JAAS_KUP_STATE_DIR": str(tmp_path / "kup"),
        "JAAS_KUP_OWNER_PID": "4242",
        "JAAS_TESTDATA": "~/td",
        "JAAS_DEBUG": "yes",
        "JAAS_DATA": "runs/sim1",
        "JAAS_SCHEDULER": "tcp://head:8786",
        "JAAS_THREADS": "3",
    }
    assert set(env) == set(VARIABLES)
    s = settings(env)
    assert s.catalog == "postgresql://db/jaas"
    assert s.data_dir == tmp_path / "data"
    assert s.cache_bytes == 2**30
    assert s.cluster_dir == tmp_path / "cl"
    assert s.progress is False
    assert s.kup_catalog == "sqlite:///k.db"
    assert s.kup_state_dir == tmp_path / "kup"
    assert s.kup_owner_pid == 4242
    assert s.testdata == Path.home() / "td"
    assert s.debug is True
    assert s.data == "runs/sim1"
    assert s.scheduler == "tcp://head:8786"
    assert s.threads == 3


@pytest.mark.parametrize(("text", "value"), [("", None), ("auto", None), ("AUTO", None), ("8", 8)])
def test_threads_a_number_or_auto(text: str, value: int | None) -> None:
    assert settings({"JAAS_THREADS": text}).threads == value


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_bad_threads_value(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^JAAS_THREADS='.*': give a positive number"):
        settings({"JAAS_THREADS": text})


def test_bad_progress_value() -> None:
    with pytest.raises(ConfigError, match=r"^JAAS_PROGRESS='maybe': give 1/true"):
        settings({"JAAS_PROGRESS": "maybe"})


def test_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAAS_CATALOG", "sqlite:///a.db")
    assert settings().catalog == "sqlite:///a.db"
    monkeypatch.setenv("JAAS_CATALOG", "sqlite:///b.db")
    assert settings().catalog == "sqlite:///b.db"


def test_readers_use_the_settings_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from jaas.cluster.client import state_dir
    from jaas.cluster.worker import _default_budget
    from jaas.store.catalog import default_url

    monkeypatch.setenv("JAAS_CATALOG", "sqlite:///c.db")
    monkeypatch.setenv("JAAS_CACHE_BYTES", "2MiB")
    monkeypatch.setenv("JAAS_CLUSTER_DIR", str(tmp_path))
    assert default_url() == "sqlite:///c.db"
    assert _default_budget(None) == 2 * 2**20
    assert state_dir() == tmp_path


def test_no_other_module_reads_jaas_variables() -> None:
    """Only jaas.settings reads JAAS_* from the environment (others may set them for children)."""
    reads = re.compile(r"(environ\.get|getenv)\(\s*[\"']JAAS_")
    saves = {"cli/demo.py"}  # saves and restores JAAS_PROGRESS around a demo run
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name != "settings.py" and reads.search(p.read_text(encoding="utf-8"))
    ]
    offenders = [o for o in offenders if o not in saves]
    assert offenders == []


@pytest.mark.parametrize(
    ("env", "argv"),
    [
        ({"JAAS_PROGRESS": "maybe"}, ["sim", "OUT", "--duration", "1s"]),
        ({"JAAS_CACHE_BYTES": "lots"}, ["ibd", "/nonexistent"]),
    ],
)
def test_cli_reports_a_bad_variable_in_one_line(
    env: dict[str, str], argv: list[str], tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    res = subprocess.run(
        [sys.executable, "-m", "jaas.cli.main", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode != 0
    name = next(iter(env))
    assert "Traceback" not in res.stderr
    assert [line for line in res.stderr.splitlines() if name in line], res.stderr
