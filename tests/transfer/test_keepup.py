"""Intake hands each verified, registered central RAW file to a running keep-up pipeline."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.cli.main import main
from jaas.kup.config import KupSettings
from jaas.kup.pipeline import down, status, up
from jaas.store.catalog import Catalog
from jaas.transfer.errors import TransferFailure
from jaas.transfer.keepup import KeepUpDropDir
from tests.kup.test_pipeline import STAGES  # copy, no-op, a checking command

SITES = """\
sites:
  CENTRAL: {{tier: 0, root: {root}/central}}
  CNAF: {{tier: 1, root: {root}/cnaf}}
rules:
  - {{name: t1, kind: raw, copies: 1, sites: [CNAF]}}
"""


def test_hand_over_is_complete_before_its_marker_and_happens_once(tmp_path: Path) -> None:
    drop = tmp_path / "kdrop"
    drop.mkdir()
    src = tmp_path / "central.raw"
    src.write_bytes(os.urandom(5000))
    hook = KeepUpDropDir(drop)
    hook([str(src)])
    hook([str(src)])  # a retried intake
    assert sorted(p.name for p in drop.iterdir()) == ["central.raw", "central.raw.done"]
    assert (drop / "central.raw").read_bytes() == src.read_bytes()
    assert (drop / "central.raw").stat().st_ino != src.stat().st_ino  # a copy, not a link
    with pytest.raises(TransferFailure, match=r"cannot hand .*missing\.raw"):
        hook([str(tmp_path / "missing.raw")])
    assert not [p for p in drop.iterdir() if p.name.startswith(".")]  # no half-written file


@pytest.mark.slow
def test_intake_feeds_keep_up_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dropbox = tmp_path / "dropbox"
    kdrop = tmp_path / "kdrop"
    for d in (dropbox, kdrop):
        d.mkdir()
    data = {}
    for seq in range(3):
        name = f"run61.{seq:03d}.raw"
        data[name] = os.urandom(3000 + seq)
        (dropbox / name).write_bytes(data[name])
        (dropbox / f"{name}.done").write_text("")
    (tmp_path / "sites.yaml").write_text(SITES.format(root=tmp_path))
    (tmp_path / "stages.yaml").write_text(STAGES)
    state_dir = tmp_path / "kup"
    settings = KupSettings(
        state_dir=state_dir, stages=str(tmp_path / "stages.yaml"), session_timeout_ms=3000
    )
    try:
        up(settings)
        argv = ["transfer", "--catalog", str(tmp_path / "catalog.db"), "intake"]
        argv += [str(tmp_path / "sites.yaml"), str(dropbox), "--central", "CENTRAL"]
        code = 0
        try:
            main([*argv, "--keepup-dropdir", str(kdrop)])
        except SystemExit as exc:
            code = int(exc.code or 0)
        assert code == 0
        out = capsys.readouterr().out
        assert out.count("ok run61.") == 3, out
        assert sorted(p.name for p in dropbox.iterdir()) == []  # safe: deleted at the source
        res = CliRunner().invoke(kup, ["watch", str(state_dir), str(kdrop), "--once"])
        assert res.exit_code == 0 and res.output.count("ingested run61.") == 3, res.output
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = status(state_dir)
            if st.files_done("c") == 3:
                break
            time.sleep(0.3)
        assert st.files_done("a") == st.files_done("c") == 3, (st.counts, st.failures)
        for name, raw in data.items():  # keep-up processed the very bytes of the detector
            assert (settings.data / "a" / name).read_bytes() == raw
        with Catalog(tmp_path / "catalog.db") as cat:
            recs = cat.files(run=61)
            assert len(recs) == 3 and all(
                r.path.startswith(str(tmp_path / "central")) for r in recs
            )
    finally:
        if (state_dir / "state.json").exists():
            down(state_dir, timeout=5)
