"""End to end: tiny simulated run (hit mode) -> convert -> jaas reco -> read_esd."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jaas.cli.main import cli
from jaas.errors import ConfigError, FormatError
from jaas.formats.esd import esd_meta, read_esd
from jaas.formats.rtraw import convert_raw
from jaas.formats.schema import EventClass
from jaas.reco.calib import default_calibration
from jaas.reco.run import reconstruct
from jaas.sim.run import simulate


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sim output dir, RTRAW file) of 5 s of a test-scale detector."""
    out = tmp_path_factory.mktemp("tiny")
    cfg = {"mode": "hit", "duration_s": 5.0, "light_scale": 0.1, "pmt_scale": 0.05, "seed": 3}
    summary = simulate(cfg, out)
    raw = out / next(f.path for f in summary.files if f.kind == "raw")
    res = convert_raw(raw, progress=False)
    return out, res.output


@pytest.mark.slow
def test_cli_round_trip(tiny_run: tuple[Path, Path], tmp_path: Path, monkeypatch):
    monkeypatch.setenv("JAAS_PROGRESS", "0")
    simdir, rtraw = tiny_run
    esd_dir = tmp_path / "esd"
    catalog = tmp_path / "cat.sqlite"
    runner = CliRunner()
    args = ["reco", str(rtraw), "-o", str(esd_dir), "--catalog", str(catalog)]
    first = runner.invoke(cli, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    esd_path = esd_dir / "run000001_0000.esd.root"
    esd = read_esd(esd_path)
    truth = pq.read_table(simdir / "truth" / "run000001_0000.truth.parquet").to_pandas()
    assert len(esd["t"]) == len(truth) > 20
    np.testing.assert_array_equal(esd["t"], truth["t"].to_numpy())
    source = truth["source"].astype(str).to_numpy()
    cls = esd["cls"]
    assert np.all(cls[source == "muon"] == EventClass.MUON)
    assert np.all(cls[source == "muon_wp"] == EventClass.WP_ONLY)
    point = ~np.isin(source, ["muon", "muon_wp"])
    assert np.all(cls[point] == EventClass.POINT)
    good = point & (esd["quality"] == 0)
    assert good.sum() >= 0.9 * point.sum()
    e_true = truth["E_true"].to_numpy()[good]
    assert np.all(np.abs(esd["E"][good] - e_true) < 0.5 * np.sqrt(e_true) + 0.1)
    meta = esd_meta(esd_path)
    assert meta["calib_version"].startswith("auto-") and meta["software_version"]
    assert meta["parent"] == rtraw.name

    # idempotent: same input, calibration and version -> kept, byte for byte
    before = esd_path.read_bytes()
    again = runner.invoke(cli, args, catch_exceptions=False)
    assert "up to date" in again.output
    assert esd_path.read_bytes() == before
    forced = runner.invoke(cli, [*args, "--force"], catch_exceptions=False)
    assert forced.exit_code == 0 and "up to date" not in forced.output
    assert esd_path.read_bytes() == before  # deterministic

    from jaas.store import Catalog

    cat = Catalog(str(catalog))
    (esd_rec,) = cat.files(kind="esd")
    (parent,) = cat.parents(esd_rec.id)
    assert parent.kind == "rtraw" and Path(parent.path).name == rtraw.name
    assert esd_rec.n_events == len(truth)


def test_mismatching_calibration_file_leaves_no_output(tiny_run: tuple[Path, Path], tmp_path: Path):
    _, rtraw = tiny_run
    cal = default_calibration().save(tmp_path / "v1.json")
    out = tmp_path / "x.esd.root"
    with pytest.raises(ConfigError, match=r"light_scale=0\.1"):
        reconstruct(rtraw, out, calibration=cal, progress=False)
    assert not out.exists()


def test_corrupt_rtraw_names_the_file_and_leaves_no_output(
    tiny_run: tuple[Path, Path], tmp_path: Path
):
    _, rtraw = tiny_run
    bad = tmp_path / rtraw.name
    shutil.copy(rtraw, bad)
    data = bytearray(bad.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 4096] = bytes(4096)  # zero out part of the compressed baskets
    bad.write_bytes(bytes(data))
    out = tmp_path / "bad.esd.root"
    with pytest.raises(FormatError, match=rtraw.name):
        reconstruct(
            bad, out, progress=False, run_meta={"config": {"light_scale": 0.1, "pmt_scale": 0.05}}
        )
    assert not out.exists()
    assert not list(tmp_path.glob("*.part"))


def test_calibrate_command_writes_a_loadable_file(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("JAAS_PROGRESS", "0")
    out = tmp_path / "c.json"
    args = ["reco", "calibrate", "--out", str(out), "--light-scale", "0.1", "--pmt-scale",
            "0.05", "--events-per-point", "5", "--version", "t1"]  # fmt: skip
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    from jaas.reco.calib import load_calibration

    cal = load_calibration(out)
    assert cal.version == "t1" and cal.pmt_scale == 0.05 and "PE/MeV" in res.output


def _out(res: Any) -> str:
    """What a CliRunner call printed, and the error the ``jaas`` entry point would print."""
    return str(res.output) + ("" if res.exception is None else str(res.exception))


def test_reco_refuses_two_inputs_with_one_output(tiny_run: tuple[Path, Path], tmp_path: Path):
    _, rtraw = tiny_run
    copies = []
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        copies.append(str(shutil.copy(rtraw, tmp_path / d / rtraw.name)))
    res = CliRunner().invoke(cli, ["reco", *copies, "-o", str(tmp_path / "esd")])
    assert res.exit_code == 1 and "same base name" in _out(res)
    assert copies[0] in _out(res) and copies[1] in _out(res)
    assert not (tmp_path / "esd").exists() or not any((tmp_path / "esd").iterdir())


def test_reco_goes_on_after_a_bad_file(tiny_run: tuple[Path, Path], tmp_path: Path):
    simdir, rtraw = tiny_run
    bad = tmp_path / "run000001_0009.rtraw.root"
    bad.write_bytes(b"\0" * 1000)
    meta = next(simdir.glob("run*.json"))
    args = ["reco", str(bad), str(rtraw), "-o", str(tmp_path / "esd"), "--run-meta", str(meta)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    assert f"{bad}: error:" in _out(res) and "1 of 2 files failed" in _out(res)
    good = tmp_path / "esd" / rtraw.name.replace(".rtraw.root", ".esd.root")
    assert len(read_esd(good)) > 0
    assert sorted(p.name for p in (tmp_path / "esd").iterdir()) == [good.name]
