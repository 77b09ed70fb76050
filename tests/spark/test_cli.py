"""`jaas cluster up --engine spark` starts a real standalone master and workers, prints
the spark:// URL; `jaas.connect(URL)` gives a handle usable as backend=; `status`
lists the workers; `down` stops exactly those processes (also on failure)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import jaas
from jaas.cli.cluster import cluster
from jaas.engine.session.analysis import coincidence
from jaas.engine.session.cache import ColumnCache
from tests.cluster._compare import assert_identical

pytestmark = [pytest.mark.spark, pytest.mark.slow]

QUERY = {"prompt": "E > 0.7 MeV and not muon", "delayed": "E > 1.5 MeV", "dt": "200 ms"}


def _running(pid: int) -> bool:
    try:
        return b"org.apache.spark.deploy" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one-line error of ``jaas ARGS`` (exit code 1, no traceback)."""
    from jaas.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_cluster_up_connect_status_down(
    spark_home: str, sim_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jaas.spark import SparkBackend
    from jaas.spark import local as spark_local

    state = tmp_path / "state"
    runner = CliRunner()
    up = runner.invoke(cluster, ["up", "--engine", "spark", "--workers", "1",
                                 "--state-dir", str(state)])  # fmt: skip
    try:
        assert up.exit_code == 0, up.output + repr(up.exception)
        url = re.search(r"master\s+(spark://\S+)", up.output)
        assert url, up.output
        sa = spark_local.recorded(state)
        assert sa.master_url == url.group(1)
        assert all(_running(p) for p in [sa.master_pid, *sa.worker_pids])
        again = _error(capsys, "cluster", "up", "--engine", "spark", "--state-dir", str(state))
        assert "already running" in again

        status = runner.invoke(cluster, ["status", "--state-dir", str(state)])
        assert status.exit_code == 0, status.output
        assert url.group(1) in status.output and "1 core" in status.output

        ds = jaas.open(sim_dir, cache=ColumnCache())
        with jaas.connect(url.group(1)) as spark:
            assert isinstance(spark, SparkBackend)
            assert url.group(1) in repr(spark)
            res = coincidence(ds, backend=spark, **QUERY)  # type: ignore[arg-type]
        assert_identical(res, coincidence(ds, **QUERY))  # type: ignore[arg-type]
        assert res.backend_info.address == url.group(1)

        down = runner.invoke(cluster, ["down", "--state-dir", str(state)])
        assert down.exit_code == 0, down.output
        assert f"stopped Spark: {1 + len(sa.worker_pids)} process(es)" in down.output
        assert not any(_running(p) for p in [sa.master_pid, *sa.worker_pids])
        assert not (state / spark_local.STATE_FILE).exists()
    finally:
        if (state / spark_local.STATE_FILE).exists():
            spark_local.stop(state)


def test_up_refuses_bad_workers_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _error(capsys, "cluster", "up", "--engine", "spark", "--workers", "0",
                 "--state-dir", str(tmp_path / "s"))  # fmt: skip
    assert "--workers must be >= 1" in err
    assert not (tmp_path / "s").exists()
