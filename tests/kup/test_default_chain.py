"""The real default chain: simulated RAW files through every stage into an analysable dataset.

ingest -> rtraw -> reco -> index -> publish by CLI, catalogued with lineage, a corrupt RAW
quarantined, then an IBD query on the published dataset; plus the stages one by one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import jaas
from jaas.cli.main import cli
from jaas.engine.cache import ColumnCache
from jaas.errors import ConfigError, NotInCatalogError
from jaas.formats.raw import RawWriter
from jaas.kup.config import KupSettings
from jaas.kup.pipeline import down, status
from jaas.kup.stages import (
    EXIT_DETERMINISTIC,
    StageContext,
    catalog_url,
    index,
    publish,
    run_entry,
)
from jaas.store import Catalog

STAGES = ["ingest", "rtraw", "reco", "index", "publish"]


def _tiny_raw(path: Path, n: int = 20, seq: int = 3) -> Path:
    rng = np.random.default_rng(seq)
    with RawWriter(path, run=7, file_seq=seq, start_time=1_000) as w:
        for i in range(n):
            k = int(rng.integers(1, 30))
            pmt = rng.integers(0, 1000, k).astype(np.uint32)
            charge = rng.uniform(0.5, 3.0, k).astype(np.float32)
            w.write_event(i, 1_000 + 1_000 * i, 1, pmt, charge, rng.uniform(0, 500, k))
    return path


def _ctx(path: Path, tmp_path: Path, stage: str = "ingest") -> StageContext:
    url = f"sqlite:///{tmp_path / 'cat.db'}"
    return StageContext(path.name, stage, path, tmp_path / "data" / stage, {"catalog": url})


def test_ingest_registers_the_raw_file_once(tmp_path: Path) -> None:
    raw = _tiny_raw(tmp_path / "run7_0003.raw")
    result = tmp_path / "r.json"
    for _ in range(2):  # a redelivered message: same row, no error
        assert run_entry("jaas.kup.stages:ingest", _ctx(raw, tmp_path), result) == 0
    out = json.loads(result.read_text())
    with Catalog(tmp_path / "cat.db") as cat:
        (rec,) = cat.files()
    assert (rec.kind, rec.run, rec.seq, rec.n_events, rec.status) == ("raw", 7, 3, 20, "good")
    assert rec.t_min == 1_000
    assert rec.t_max == 1_000 + 19_000
    assert out["meta"]["catalog_id"] == rec.id
    assert out["meta"]["adler32"] == rec.adler32


@pytest.mark.parametrize(
    ("damage", "why"),
    [("flip", "CRC-32C mismatch"), ("truncate", "missing end-of-file record")],
)
def test_corrupt_raw_is_quarantined_with_its_reason(
    tmp_path: Path, damage: str, why: str, capsys
) -> None:
    good = _tiny_raw(tmp_path / "good.raw")
    data = bytearray(good.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[-100:]
    bad = tmp_path / "drop" / "run7_0009.raw"
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    result = tmp_path / "r.json"
    ctx = _ctx(bad, tmp_path)
    assert run_entry("jaas.kup.stages:ingest", ctx, result) == EXIT_DETERMINISTIC
    out = json.loads(result.read_text())
    assert out["classification"] == "deterministic"
    assert str(bad) in out["reason"]
    assert "quarantined" in out["reason"]
    assert why in out["reason"]
    copy = tmp_path / "data" / "quarantine" / bad.name
    assert copy.read_bytes() == bad.read_bytes()
    assert bad.is_file()  # the original stays where the detector put it
    with Catalog(tmp_path / "cat.db") as cat:
        rec = cat.get_file(bad)
    assert rec.status == "quarantined"
    assert why in rec.status_reason
    assert str(bad) in rec.status_reason
    assert (rec.run, rec.seq) == (7, 3)  # from the readable header
    assert run_entry("jaas.kup.stages:ingest", ctx, result) == EXIT_DETERMINISTIC  # retried
    with Catalog(tmp_path / "cat.db") as cat:
        assert len(cat.files()) == 1


def test_add_to_live_dataset_is_idempotent_and_checks_ids(tmp_path: Path) -> None:
    with Catalog(tmp_path / "cat.db") as cat:
        ids = [cat.add_file(_tiny_raw(tmp_path / f"f{i}.raw", seq=i), kind="raw").id
               for i in range(3)]  # fmt: skip
        cat.add_to_dataset("keepup", ids[:2], version=7)
        cat.add_to_dataset("keepup", ids[1:], version=7)
        ds = cat.add_to_dataset("keepup", ids[1:], version=7)
        assert ds.file_ids == tuple(ids)
        assert [f.id for f in cat.dataset_files("keepup", 7)] == ids
        with pytest.raises(NotInCatalogError, match=r"file ids \[999\]"):
            cat.add_to_dataset("keepup", [999], version=7)


def test_stage_catalog_comes_from_param_or_pipeline(tmp_path: Path, monkeypatch) -> None:
    ctx = StageContext("f.raw", "ingest", tmp_path / "f.raw", tmp_path / "out")
    monkeypatch.delenv("JAAS_KUP_CATALOG", raising=False)
    monkeypatch.delenv("JAAS_KUP_STATE_DIR", raising=False)
    with pytest.raises(ConfigError, match=r"f\.raw.*no catalog"):
        catalog_url(ctx)
    settings = KupSettings(state_dir=tmp_path / "kup")
    settings.state_dir.mkdir()
    settings.save()
    monkeypatch.setenv("JAAS_KUP_STATE_DIR", str(settings.state_dir))
    assert catalog_url(ctx) == settings.database
    param = StageContext("f.raw", "ingest", ctx.input, ctx.output_dir, {"catalog": "sqlite://"})
    assert catalog_url(param) == "sqlite://"


def _invoke(runner: CliRunner, *args: str) -> str:
    res = runner.invoke(cli, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def _corrupt_copy(src: Path, dest: Path) -> Path:
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside an event record: CRC mismatch
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(bytes(data))
    return dest


def _wait(state_dir: Path, n_good: int, limit: float = 150.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        st = status(state_dir)
        if st.files_done("publish") == n_good and st.counts["ingest"].get("dead") == 1:
            return
        time.sleep(0.5)
    raise AssertionError(f"pipeline did not finish in {limit} s: {st.counts} {st.failures}")


@pytest.mark.slow
def test_default_chain_publishes_an_analysable_dataset(tmp_path: Path) -> None:
    runner = CliRunner()
    sim = tmp_path / "sim"
    _invoke(runner, "sim", str(sim), "--duration", "25s", "--mode", "hit", "--seed", "4",
            "--light-scale", "0.1", "--pmt-scale", "0.1", "--scale", "reactor_ibd=3000",
            "--max-events-per-file", "120")  # fmt: skip
    raws = sorted((sim / "raw").glob("*.raw"))
    assert len(raws) >= 5
    # the corrupt file claims the (run, sequence) of the last RAW file, which is not
    # ingested itself (a second file with that (run, sequence) would be refused at once)
    *raws, last = raws
    bad = _corrupt_copy(last, tmp_path / "drop" / "run000001_0099.raw")
    state_dir = tmp_path / "kup"
    try:
        out = _invoke(runner, "kup", "up", str(state_dir), "--session-timeout-ms", "3000")
        assert "broker 127.0.0.1:" in out
        out = _invoke(runner, "kup", "ingest", str(state_dir), *map(str, [*raws, bad]))
        assert f"queued {len(raws) + 1} file(s)" in out
        _wait(state_dir, len(raws))
        st = status(state_dir)
        for stage in STAGES:
            assert st.files_done(stage) == len(raws), (stage, st.counts)

        # the corrupt file: dead at ingest with its reason, quarantined, the others went on
        out = _invoke(runner, "kup", "status", str(state_dir))
        (line,) = [ln for ln in out.splitlines() if bad.name in ln]
        assert "dead" in line
        assert "quarantined" in line
        assert "CRC" in line
        settings = KupSettings.load(state_dir)
        assert (settings.data / "quarantine" / bad.name).read_bytes() == bad.read_bytes()

        url = settings.database  # the catalog lives in the ledger's DB by default
        with Catalog(url) as cat:
            rec = cat.get_file(bad)
            assert rec.status == "quarantined"
            assert "CRC" in rec.status_reason
            kinds = [f.kind for f in cat.files()]
            assert kinds.count("raw") == len(raws) + 1
            for kind in ("rtraw", "esd", "index"):
                assert kinds.count(kind) == len(raws), kind
            published = cat.dataset_files("keepup")  # the live dataset
            assert sorted(f.path for f in published) == sorted(
                f.path for f in cat.files(kind="index")
            )
            chain = [f.kind for f in cat.lineage(published[0].id)]
            assert chain == ["esd", "rtraw", "raw"]
            assert cat.lineage(published[0].id)[-1].path in {str(p.resolve()) for p in raws}
            n_rows = len(cat.files())

        # a redelivered message / a retried attempt after a crash adds nothing
        esd = next((settings.data / "reco").glob("*.esd.root"))
        ctx = StageContext(raws[0].name, "index", esd, settings.data / "index",
                           {"catalog": url})  # fmt: skip
        again = index(ctx)
        publish(StageContext(raws[0].name, "publish", again, settings.data / "publish",
                             {"catalog": url}))  # fmt: skip
        with Catalog(url) as cat:
            assert len(cat.files()) == n_rows
            assert len(cat.dataset_files("keepup", 1)) == len(raws)
        assert len(list((settings.data / "index").glob("*.parquet"))) == len(raws)
        out = _invoke(runner, "kup", "ingest", str(state_dir), str(raws[0]))
        assert "queued 0 file(s), 1 already known" in out

        # the published dataset is what an analysis opens
        res = jaas.open(url, dataset="keepup", cache=ColumnCache()).ibd(offtime=None)
        assert res.n_pairs >= 5  # ~3000x the reactor rate over 25 s

        out = _invoke(runner, "kup", "down", str(state_dir))
        assert "worker publish" in out
        assert "broker" in out
        assert not any(status(state_dir).processes.values())
    finally:
        if (state_dir / "state.json").exists():
            down(state_dir, timeout=5)


@pytest.mark.parametrize(
    ("pmt", "charge", "why"),
    [
        (99_999, 1.0, "field 'pmt': PMT id out of range"),
        (10, float("nan"), "field 'charge': charge is not a finite number: nan"),
    ],
)
def test_raw_with_valid_crcs_but_impossible_content_is_quarantined(tmp_path, pmt, charge, why):
    bad = tmp_path / "drop" / "run7_0010.raw"
    bad.parent.mkdir()
    with RawWriter(bad, run=7, file_seq=10, start_time=1_000) as w:
        for i in range(6):
            p = np.array([1, 2, pmt if i == 4 else 3], dtype=np.uint32)
            c = np.array([1.0, 2.0, charge if i == 4 else 1.5], dtype=np.float32)
            w.write_event(i, 1_000 + 1_000 * i, 1, p, c, np.array([1.0, 2.0, 3.0]))
    result = tmp_path / "r.json"
    assert run_entry("jaas.kup.stages:ingest", _ctx(bad, tmp_path), result) == EXIT_DETERMINISTIC
    out = json.loads(result.read_text())
    assert out["classification"] == "deterministic"  # quarantined, not retried
    assert "quarantined" in out["reason"] and "event 4" in out["reason"]
    with Catalog(tmp_path / "cat.db") as cat:
        rec = cat.get_file(bad)
    assert rec.status == "quarantined"
    assert why in (rec.status_reason or "")  # the field and what is wrong with it


def test_product_rebuilt_after_a_reset_replaces_its_catalog_row(tmp_path: Path) -> None:
    """A stage run again after `kup reset` (new bytes at the same path: here another
    compression) replaces the catalog row, keeps the lineage and audits it; without the
    reset the same change is refused."""
    from jaas._io import adler32_file

    raw = _tiny_raw(tmp_path / "run7_0003.raw")
    result = tmp_path / "r.json"
    assert run_entry("jaas.kup.stages:ingest", _ctx(raw, tmp_path), result) == 0
    ctx = _ctx(raw, tmp_path, "rtraw")
    assert run_entry("jaas.kup.stages:rtraw", ctx, result) == 0
    out = Path(json.loads(result.read_text())["output"])
    with Catalog(tmp_path / "cat.db") as cat:
        before = cat.get_file(out)
    changed = StageContext(
        ctx.file, "rtraw", raw, ctx.output_dir, {**ctx.params, "compression": "lz4"}
    )
    assert run_entry("jaas.kup.stages:rtraw", changed, result) != 0  # no reset: refused
    assert "must not change" in json.loads(result.read_text())["reason"]
    # the refusal came before the rename: the old bytes (and row) are still there
    assert adler32_file(out) == before.adler32
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
    rebuilt = StageContext(
        ctx.file, "rtraw", raw, ctx.output_dir, changed.params,
        rebuilt="keep-up reset by op: new compression",
    )  # fmt: skip
    assert run_entry("jaas.kup.stages:rtraw", rebuilt, result) == 0
    with Catalog(tmp_path / "cat.db") as cat:
        after = cat.get_file(out)
        parents = cat.parents(after.id)
        audit = cat.audit_log(out)
        (raw_rec,) = [f for f in cat.files() if f.kind == "raw"]
    assert after.id == before.id  # the same row, new bytes
    assert after.adler32 == adler32_file(out) != before.adler32
    assert [p.id for p in parents] == [raw_rec.id]  # lineage kept
    assert audit and audit[-1]["new_adler32"] == after.adler32
    assert "new compression" in str(audit[-1])


def test_reset_job_tells_the_next_attempt_why_it_rebuilds(tmp_path: Path) -> None:
    from jaas.kup.config import PipelineConfig
    from jaas.kup.ledger import Ledger
    from jaas.kup.states import JobKey

    cfg = PipelineConfig.model_validate(
        {"stages": [{"name": "a", "input": "t.a", "entry": "jaas.kup.stages:noop"}]}
    )
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", cfg)
    try:
        (key,) = ledger.submit_files([tmp_path / "f.raw"])
        first = ledger.start(key, worker="w")
        assert first is not None and first.rebuild is None
        ledger.finish(first, exit_code=0, output_path=str(tmp_path / "f.out"))
        ledger.reset(key.file, "a", who="op", note="new calibration")
        again = ledger.start(JobKey(key.file, "a", key.version), worker="w")
        assert again is not None
        assert again.rebuild == "keep-up reset by op: new calibration"
    finally:
        ledger.close()
