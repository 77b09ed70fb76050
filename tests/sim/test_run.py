"""Run orchestration: determinism, chunking, output files, metadata, configuration, CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jaas._io import adler32_file
from jaas.cli.sim import sim
from jaas.errors import ConfigError
from jaas.formats.schema import INDEX_SCHEMA, TRUTH_SCHEMA
from jaas.sim.params import SimConfig, parse_duration, parse_start
from jaas.sim.run import simulate
from jaas.sim.stream import _separate, generate_truth
from jaas.sim.truth import SOURCES, Events

SMALL = {"duration_s": 120.0, "block_s": 60.0, "chunk_s": 60.0, "max_events_per_file": 1000}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_same_seed_gives_byte_identical_index_files(tmp_path):
    simulate({**SMALL, "seed": 3}, tmp_path / "a")
    simulate({**SMALL, "seed": 3}, tmp_path / "b")
    simulate({**SMALL, "seed": 4}, tmp_path / "c")
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert len(a) >= 5 and a.keys() == b.keys()
    assert a == b
    assert a["index/run000001_0000.parquet"] != c["index/run000001_0000.parquet"]


@pytest.mark.slow
def test_same_seed_gives_byte_identical_raw_files(tmp_path):
    cfg = {"duration_s": 20.0, "block_s": 10.0, "chunk_s": 10.0, "mode": "hit", "seed": 5,
           "light_scale": 0.05, "pmt_scale": 0.05, "max_events_per_file": 150}  # fmt: skip
    s = simulate(cfg, tmp_path / "a")
    simulate(cfg, tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b
    raws = [r for r in s.files if r.kind == "raw"]
    assert len(raws) >= 2 and sum(r.n_events for r in raws) == s.n_events
    truth = pq.read_table(tmp_path / "a" / "truth" / "run000001_0001.truth.parquet")
    assert truth.column("file_seq").to_pylist() == [1] * truth.num_rows
    assert truth.column("entry").to_pylist() == list(range(truth.num_rows))


def test_hit_mode_splits_raw_files_by_bytes(tmp_path):
    cfg = {"duration_s": 10.0, "block_s": 10.0, "chunk_s": 10.0, "mode": "hit", "seed": 1,
           "light_scale": 0.05, "pmt_scale": 0.05, "max_bytes_per_file": 100_000}  # fmt: skip
    s = simulate(cfg, tmp_path)
    raws = [r for r in s.files if r.kind == "raw"]
    assert len(raws) >= 2
    assert all(r.bytes < 100_000 * 3 for r in raws)  # a file ends once past the limit
    assert [r.seq for r in raws] == list(range(len(raws)))
    assert all(a.t_last < b.t_first for a, b in itertools.pairwise(raws))


def test_chunk_size_does_not_change_the_output():
    base = {"duration_s": 40.0, "seed": 9, "block_s": 2.0,
            "scale": {"li9he8": 10000.0, "singles": 0.1}}  # fmt: skip
    tiny_cfg = SimConfig(**base, chunk_s=2.0)
    tiny = Events.concat(c.events for c in generate_truth(tiny_cfg))
    big = Events.concat(c.events for c in generate_truth(SimConfig(**base, chunk_s=40.0)))
    for name in tiny.cols:
        np.testing.assert_array_equal(tiny[name], big[name], err_msg=name)
    # the test is meaningful: 9Li decays do cross the 2 s chunk boundaries
    li = tiny["src"] == SOURCES.index("li9he8")
    mu_t = dict(zip(tiny["corr_id"][tiny["src"] == SOURCES.index("muon")],
                    tiny["t"][tiny["src"] == SOURCES.index("muon")], strict=True))  # fmt: skip
    t0 = tiny_cfg.start_ns
    parent_chunk = np.array([(mu_t[c] - t0) // 2e9 for c in tiny["corr_id"][li]])
    own_chunk = (tiny["t"][li] - t0) // 2e9
    assert np.sum(own_chunk > parent_chunk) > 20


def test_block_size_changes_streams_but_not_statistics():
    base = {"duration_s": 400.0, "seed": 2, "chunk_s": 400.0,
            "scale": {"li9he8": 2000.0, "reactor_ibd": 5000.0}}  # fmt: skip
    small = Events.concat(c.events for c in generate_truth(SimConfig(**base, block_s=1.0)))
    large = Events.concat(c.events for c in generate_truth(SimConfig(**base, block_s=400.0)))
    for ev in (small, large):
        li = ev["src"] == SOURCES.index("li9he8")
        prompts, delayed = np.sum(li & (ev["role"] == 1)), np.sum(li & (ev["role"] == 2))
        assert abs(prompts - delayed) <= 2  # only followers past the run end are lost
    for src in ("li9he8", "reactor_ibd", "muon"):
        k = SOURCES.index(src)
        a, b = np.sum(small["src"] == k), np.sum(large["src"] == k)
        assert abs(a - b) < 4 * np.sqrt(a + b), src


def test_trigger_times_are_unique_and_sorted(tmp_path):
    cfg = SimConfig(duration_s=30, block_s=10, chunk_s=10, seed=1,
                    scale={"bipo212": 20000.0})  # fmt: skip
    t = np.concatenate([c.events["t"] for c in generate_truth(cfg)])
    assert np.all(np.diff(t) >= 1)
    assert t[0] >= cfg.start_ns and t[-1] < cfg.end_ns + 1000


def test_separate_moves_ties_apart_deterministically():
    t = np.array([5, 5, 5, 7, 20], np.int64)
    np.testing.assert_array_equal(_separate(t, 4, 1), [5, 6, 7, 8, 20])
    np.testing.assert_array_equal(_separate(t, 5, 2), [7, 9, 11, 13, 20])


def test_files_and_metadata(tmp_path):
    s = simulate({**SMALL, "run": 42, "seed": 1}, tmp_path)
    meta = json.loads((tmp_path / "run000042.json").read_text())
    assert meta["run"] == 42 and meta["seed"] == 1 and meta["config"]["duration_s"] == 120
    assert meta["start"].startswith("2026-01-01T00:00:00")
    assert sum(meta["counts"].values()) == meta["n_events"] == s.n_events
    index_files = sorted((tmp_path / "index").glob("*.parquet"))
    assert [p.name for p in index_files][:2] == ["run000042_0000.parquet", "run000042_0001.parquet"]
    recs = {r["path"]: r for r in meta["files"]}
    total = 0
    for k, p in enumerate(index_files):
        table = pq.read_table(p)
        assert table.schema.remove_metadata().equals(INDEX_SCHEMA.remove_metadata())
        assert table.column("file_id").to_pylist() == [k] * table.num_rows
        assert table.column("entry").to_pylist() == list(range(table.num_rows))
        t = table.column("t").to_numpy()
        assert np.all(np.diff(t) > 0) and table.num_rows <= 1000
        rec = recs[f"index/{p.name}"]
        assert (rec["n_events"], rec["t_first"], rec["t_last"]) == (len(t), t[0], t[-1])
        assert rec["adler32"] == adler32_file(p)
        total += table.num_rows
    assert total == s.n_events
    truth = pq.read_table(tmp_path / "truth" / "run000042_0000.truth.parquet")
    assert truth.schema.remove_metadata().equals(TRUTH_SCHEMA.remove_metadata())
    text = str(s)
    assert "reactor_ibd" in text and "run000042_0000.parquet" in text and "events/s" in text


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="duration_s"):
        SimConfig.build(duration_s=-1)
    with pytest.raises(ConfigError, match=r"physics\.R_ls"):
        SimConfig.build(physics={"R_ls": 0})
    with pytest.raises(ConfigError, match=r"unknown source 'reactor'.*reactor_ibd"):
        SimConfig.build(scale={"reactor": 2})
    with pytest.raises(ConfigError, match="chunk_s"):
        SimConfig.build(block_s=7, chunk_s=10)
    with pytest.raises(ConfigError, match="mode"):
        simulate({"mode": "fast"}, "/nonexistent/never-created")
    with pytest.raises(ConfigError, match="start"):
        SimConfig.build(start="yesterday")


def test_durations_and_start_times():
    assert parse_duration("600s") == 600
    assert parse_duration("10min") == 600
    assert parse_duration("1.5h") == 5400
    assert parse_duration("2d") == 172800
    assert parse_duration("42") == 42
    for bad in ("1y", "h", "-1h", "0s"):
        with pytest.raises(ConfigError, match="duration"):
            parse_duration(bad)
    assert parse_start("2026-01-01T00:00:00Z") == 1767225600 * 10**9
    assert parse_start("2026-01-01T01:00:00+01:00") == 1767225600 * 10**9


def test_cli_runs_and_prints_summary(tmp_path):
    runner = CliRunner()
    result = runner.invoke(sim, [str(tmp_path), "--duration", "2min", "--seed", "4", "--run", "3",
                                 "--scale", "reactor_ibd=1000", "--scale", "muon=0",
                                 "--max-events-per-file", "500"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "reactor_ibd" in result.output
    meta = json.loads((tmp_path / "run000003.json").read_text())
    assert meta["config"]["scale"] == {"reactor_ibd": 1000.0, "muon": 0.0}
    assert meta["counts"]["muon"] == 0 and meta["counts"]["reactor_ibd"] > 0
    assert meta["duration_s"] == 120


def test_cli_rejects_bad_scale(tmp_path):
    result = CliRunner().invoke(sim, [str(tmp_path), "--duration", "1min", "--scale", "muon"])
    assert isinstance(result.exception, ConfigError)
    assert "SOURCE=FACTOR" in str(result.exception)
    result = CliRunner().invoke(sim, [str(tmp_path), "--duration", "1min", "--scale", "mu=1"])
    assert "valid sources" in str(result.exception)


def test_non_empty_output_is_refused_and_force_clears_a_previous_run(tmp_path):
    out = tmp_path / "run"
    first = simulate({**SMALL, "duration_s": 240.0, "block_s": 60.0}, out)
    n_first = len(list((out / "index").glob("*.parquet")))
    with pytest.raises(ConfigError, match=r"not empty.*--force"):
        simulate(SMALL, out)
    assert _files(out).keys() == {r.path for r in first.files} | {"run000001.json"}
    second = simulate(SMALL, out, force=True)
    # only the new run's files are left: the analysis cannot read the old ones with it
    assert _files(out).keys() == {r.path for r in second.files} | {"run000001.json"}
    assert len(list((out / "index").glob("*.parquet"))) < n_first


def test_force_never_deletes_files_a_simulation_did_not_write(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"thesis\.tex"):
        simulate(SMALL, tmp_path, force=True)
    assert (tmp_path / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_start_past_int64_nanoseconds_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="2262"):
        simulate({**SMALL, "start": "2300-01-01"}, tmp_path / "s")
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_cli_duration_needs_a_unit_and_force_is_an_option(tmp_path):
    res = CliRunner().invoke(sim, [str(tmp_path / "s"), "--duration", "10"])
    assert isinstance(res.exception, ConfigError) and "10s" in str(res.exception)
    args = [str(tmp_path / "s"), "--duration", "60s", "--no-truth"]
    assert CliRunner().invoke(sim, args).exit_code == 0
    assert isinstance(CliRunner().invoke(sim, args).exception, ConfigError)
    assert CliRunner().invoke(sim, [*args, "--force"]).exit_code == 0


@pytest.mark.parametrize("bad", ["reactor_ibd=1e400", "muon=inf", "muon=nan"])
def test_cli_rejects_non_finite_scale(tmp_path, bad):
    res = CliRunner().invoke(sim, [str(tmp_path / "s"), "--duration", "10s", "--scale", bad])
    assert isinstance(res.exception, ConfigError)
    assert bad in str(res.exception) or "must be >= 0" in str(res.exception)
