"""``jaas ibd``, ``jaas query`` and ``jaas demo`` from a terminal user's point of view."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jaas.cli.analysis import ibd, query
from jaas.cli.demo import demo
from jaas.sim import SimConfig, simulate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-sim")
    simulate(SimConfig(duration_s=4 * 3600, seed=5, scale={"reactor_ibd": 30, "bipo214": 3}), out)
    return out


def test_ibd_prints_summary_truth_and_writes_outputs(run_dir: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(ibd, [str(run_dir), "-o", str(tmp_path / "res")])
    assert res.exit_code == 0, res.output
    assert "pairs" in res.output
    assert "livetime" in res.output
    assert "efficiency per cut" in res.output
    assert "published" in res.output
    pairs = pq.read_table(tmp_path / "res" / "ibd_pairs.parquet")
    assert pairs.num_rows > 50
    assert (tmp_path / "res" / "ibd_pairs.png").stat().st_size > 10_000


def test_ibd_cut_options_change_the_answer(run_dir: Path) -> None:
    runner = CliRunner()
    loose = runner.invoke(ibd, [str(run_dir), "--dr-max", "none", "--offtime", "0",
                                "--mode", "all", "--no-vetoes"])  # fmt: skip
    tight = runner.invoke(ibd, [str(run_dir), "--dr-max", "0.5 m", "--offtime", "0"])
    assert loose.exit_code == 0, loose.output
    assert tight.exit_code == 0, tight.output

    def n_pairs(text: str) -> int:
        line = next(s for s in text.splitlines() if s.startswith("pairs"))
        return int(line.split()[1].replace(",", ""))

    assert n_pairs(loose.output) > n_pairs(tight.output)


def test_query_bipo_coincidence_and_selection(run_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        query,
        [str(run_dir), "--prompt", "0.7 MeV < E < 3.5 MeV", "--delayed", "0.7 MeV < E < 1.3 MeV",
         "--dt", "1 ms", "--dt-min", "1 us", "--dr", "1 m", "--label", "BiPo214",
         "-o", str(tmp_path / "q")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "BiPo214" in res.output
    assert (tmp_path / "q" / "bipo214_pairs.parquet").exists()
    sel = runner.invoke(query, [str(run_dir), "--select", "E > 20 MeV and muon"])
    assert sel.exit_code == 0, sel.output
    assert "Hz" in sel.output


def test_bad_expression_is_one_clear_error(run_dir: Path) -> None:
    res = CliRunner().invoke(query, [str(run_dir), "--select", "Energy > 1 MeV"])
    assert res.exit_code != 0
    assert "did you mean 'E'" in str(res.exception)
    bad_veto = CliRunner().invoke(ibd, [str(run_dir), "--veto", "detector:muon"])
    assert bad_veto.exit_code == 2
    assert "KIND:TRIGGER:WINDOW" in bad_veto.output


@pytest.mark.parametrize("label", ["../x", "/tmp/x", "a/b", ".hidden", "-rf", "", "a..b"])
def test_label_is_never_a_path(run_dir: Path, tmp_path: Path, label: str) -> None:
    out = tmp_path / "o"
    for args in (["--select", "E > 20 MeV"], ["--prompt", "E > 1 MeV", "--delayed", "E > 1 MeV"]):
        res = CliRunner().invoke(query, [str(run_dir), *args, "--label", label, "-o", str(out)])
        assert res.exit_code == 2, res.output
        assert "--label" in res.output and "plain name" in res.output
    assert not out.exists() and not (tmp_path / "x_events.parquet").exists()


def test_query_and_ibd_print_the_multiplicity_mode_they_used(run_dir: Path) -> None:
    """The two commands have different defaults (all / exactly_one): each says which."""
    q = CliRunner().invoke(query, [str(run_dir), "--prompt", "E > 1 MeV", "--delayed",
                                   "1.9 MeV < E < 2.5 MeV", "--offtime", "0"])  # fmt: skip
    i = CliRunner().invoke(ibd, [str(run_dir), "--offtime", "0"])
    assert q.exit_code == 0 and i.exit_code == 0, q.output + i.output
    mode = [line.split() for t in (q.output, i.output) for line in t.splitlines()
            if line.strip().startswith("mode ")]  # fmt: skip
    assert mode == [["mode", "all"], ["mode", "exactly_one"]]
    helps = [CliRunner().invoke(c, ["--help"]).output for c in (query, ibd)]
    assert "`jaas ibd` defaults to" in " ".join(helps[0].split())


def test_unknown_hist_column_and_hostile_constants_are_named(run_dir: Path) -> None:
    from jaas.errors import ConfigError, SelectionError

    res = CliRunner().invoke(query, [str(run_dir), "--select", "E > 1 MeV", "--hist", "Ee"])
    assert isinstance(res.exception, ConfigError), res.output
    assert "did you mean 'E'" in str(res.exception)
    empty = CliRunner().invoke(query, [str(run_dir), "--select", "E > 1e9 MeV"])
    assert empty.exit_code == 0 and "(no events)" in empty.output, empty.output
    for dt in ("2e10 s", "1 ms / 0"):
        res = CliRunner().invoke(
            query, [str(run_dir), "--prompt", "E > 1 MeV", "--delayed", "E > 1 MeV", "--dt", dt]
        )
        assert isinstance(res.exception, SelectionError), (dt, res.output)
    digits = CliRunner().invoke(query, [str(run_dir), "--select", "E > \u0661 MeV"])
    assert isinstance(digits.exception, SelectionError)
    assert "unexpected character" in str(digits.exception)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        demo, ["--days", "0.2", "--pipeline-seconds", "0", "-o", str(tmp_path / "demo")]
    )
    assert res.exit_code == 0, res.output
    assert "efficiency per cut" in res.output
    assert "warm" in res.output
    assert (tmp_path / "demo" / "ibd" / "ibd_pairs.png").exists()


@pytest.mark.slow
def test_demo_with_the_keepup_pipeline(tmp_path: Path) -> None:
    """`make demo`'s flow: RAW data through the pipeline, IBD on what was published."""
    res = CliRunner().invoke(
        demo, ["--days", "0.05", "--pipeline-seconds", "12", "-o", str(tmp_path / "demo")]
    )
    assert res.exit_code == 0, res.output
    assert "keep-up production" in res.output
    assert "IBD on keepup" in res.output  # the analysis ran on the published dataset
    assert "pipeline stopped" in res.output
    publish = next(line for line in res.output.splitlines() if line.startswith("publish"))
    assert int(publish.split()[5]) > 0  # files done at the last stage
