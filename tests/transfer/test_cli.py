from __future__ import annotations

from pathlib import Path

import pytest

from jaas.cli.main import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_demo_routes_around_the_cut_link_and_status_commands_read_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "demo"
    code, out, _ = _run(["transfer", "demo", str(d), "--files", "3"], capsys)
    assert code == 0
    assert "run 12: 3/3 files at CNAF verified, 3/3 at JINR, 3/3 at IN2P3" in out
    jinr = [line for line in out.splitlines() if "  JINR  " in line]
    assert len(jinr) == 3 and all("CENTRAL -> CNAF -> JINR" in line for line in jinr)
    assert all(" ok " in line for line in jinr)
    cat = ["--catalog", str(d / "catalog.db")]
    sites = str(d / "sites.yaml")
    code, out, _ = _run(["transfer", *cat, "status", sites, "--replicas"], capsys)
    assert code == 0 and "3/3 at JINR" in out and "ALERT" not in out
    code, out, _ = _run(["transfer", *cat, "sites", sites], capsys)
    assert "link CENTRAL -> JINR: disabled" in out and "3 replicas" in out
    code, out, _ = _run(["transfer", "rules", sites], capsys)
    assert "raw-to-tier1: every kind raw file gets 3 verified copies" in out
    code, out, _ = _run(["transfer", *cat, "retry", sites, "--stuck"], capsys)
    assert code == 0
    copy = next((d / "jinr").rglob("*.raw"))
    copy.write_bytes(b"flipped")
    code, out, _ = _run(["transfer", *cat, "audit", sites, "--site", "JINR"], capsys)
    assert code == 0 and "1 bad replica(s)" in out and "quarantined" in out
    code, out, _ = _run(["transfer", *cat, "run", sites], capsys)
    assert code == 0 and "3/3 at JINR" in out


def test_bad_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "sites.yaml"
    bad.write_text("sites:\n  A: {root: /a, tier: high}\n")
    code, _, err = _run(["transfer", "rules", str(bad)], capsys)
    assert code == 1
    assert err.strip() == f"error: {bad}:2: sites.A.tier: expected int, got 'high'"
    code, _, err = _run(["transfer", "retry", str(bad)], capsys)
    assert code == 1 and "Traceback" not in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    code, _, err = _run(["transfer", "demo", str(tmp_path / "full")], capsys)
    assert code == 1 and err.startswith("error:") and "not empty" in err
