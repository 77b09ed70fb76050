"""Tokens checked by real XRootD servers with the SciTokens plugin (no stand-in checker)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from jaas.store.catalog import Catalog
from jaas.transfer.config import parse_topology
from jaas.transfer.errors import TransferFailure
from jaas.transfer.replicator import Replicator, lfn_for
from jaas.transfer.storage import TokenSource, XRootDStorage
from jaas.transfer.tokens import TokenCache, TokenIssuer

from .conftest import FakeClock
from .xrd import ISSUER, Server
from .xrd import token_sites as token_sites

pytestmark = pytest.mark.slow

Sites = tuple[dict[str, Server], bytes]


def _issuer(key: bytes, lifetime: float = 600.0) -> TokenIssuer:
    return TokenIssuer(ISSUER, key, algorithm="ES256", lifetime=lifetime, key_id="k1")


def _replicate(
    servers: dict[str, Server],
    catalog: Catalog,
    clock: FakeClock,
    tmp_path: Path,
    central: TokenSource,
    cnaf: TokenSource,
) -> tuple[Replicator, int]:
    """One file at CENTRAL, a rule asking for a copy at CNAF, the replicator run."""
    topo = parse_topology(
        "sites:\n"
        + "".join(f"  {n}: {{root: '{s.root}'}}\n" for n, s in servers.items())
        + "rules:\n  - {name: t1, kind: raw, copies: 1, sites: [CNAF]}\n"
    )
    storages: dict[str, XRootDStorage] = {
        "CENTRAL": servers["CENTRAL"].storage(central),
        "CNAF": servers["CNAF"].storage(cnaf),
    }
    rep = Replicator(catalog, topo, storages=storages, clock=clock)  # type: ignore[arg-type]
    local = tmp_path / "run40.000.raw"
    local.write_bytes(os.urandom(200_000))
    rec = catalog.add_file(local, kind="raw", run=40, seq=0)
    storages["CENTRAL"].upload(local, lfn_for(rec))
    rep.add_source(rec, "CENTRAL")
    rep.apply_rules()
    rep.run(advance=clock.advance)
    return rep, rec.id


def test_valid_tokens_copy_server_to_server(
    token_sites: Sites, catalog: Catalog, clock: FakeClock, tmp_path: Path
) -> None:
    servers, key = token_sites
    with pytest.raises(TransferFailure, match="permission denied"):  # no token: refused
        servers["CNAF"].storage().checksum("raw/nothing")
    tokens = TokenCache(_issuer(key))
    rep, fid = _replicate(servers, catalog, clock, tmp_path, tokens, tokens)
    assert rep.ledger.find(fid, "CNAF").state == "done"
    disk = servers["CNAF"].dir / "data" / "raw" / "run40" / "run40.000.raw"
    assert disk.stat().st_size == 200_000
    assert rep.ledger.replica(fid, "CNAF").checksum == catalog.get_file(fid).adler32


@pytest.mark.parametrize(
    "bad",
    ["wrong audience", "wrong scope", "expired"],
)
def test_a_token_the_server_refuses_fails_permanently_naming_the_site(
    token_sites: Sites, catalog: Catalog, clock: FakeClock, tmp_path: Path, bad: str
) -> None:
    servers, key = token_sites
    good = TokenCache(_issuer(key))
    issuer = _issuer(key, lifetime=-120.0 if bad == "expired" else 600.0)

    def cnaf(site: str, scope: str) -> str:
        if bad == "wrong audience":
            return issuer.issue("JINR", [scope], time.time())
        if bad == "wrong scope":
            return issuer.issue(site, ["storage.read"], time.time())
        return issuer.issue(site, [scope], time.time())

    rep, fid = _replicate(servers, catalog, clock, tmp_path, good, cnaf)
    req = rep.ledger.find(fid, "CNAF")
    assert req.state == "failed"
    [att] = rep.ledger.attempts(req.id)
    assert att.error_class == "token_refused"
    assert att.message.startswith("token refused by CNAF: ") and "permission denied" in att.message
    assert "Traceback" not in att.message and "\n" not in att.message
    assert not (servers["CNAF"].dir / "data" / "raw" / "run40").exists()
    assert rep.ledger.replica(fid, "CENTRAL").status == "ok"  # the source is untouched


def test_a_token_about_to_expire_is_refreshed_before_the_transfer(
    token_sites: Sites, catalog: Catalog, clock: FakeClock, tmp_path: Path
) -> None:
    servers, key = token_sites
    offset = [-545.0]  # the first tokens expire 55 s from now: inside the 60 s margin later
    tokens = TokenCache(_issuer(key), clock=lambda: time.time() + offset[0], refresh_margin=60)
    first = tokens("CNAF", "storage.read")
    assert servers["CNAF"].storage(lambda s, sc: first).stat("raw/none") is None  # accepted
    offset[0] = 0.0
    issued = tokens.issued
    rep, fid = _replicate(servers, catalog, clock, tmp_path, tokens, tokens)
    assert rep.ledger.find(fid, "CNAF").state == "done"
    assert tokens.issued > issued
    assert tokens("CNAF", "storage.read") != first
