from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from jaas.store.catalog import Catalog
from jaas.transfer.errors import TransferFailure
from jaas.transfer.replicator import Replicator
from jaas.transfer.storage import LocalStorage
from jaas.transfer.tokens import GuardedStorage, TokenCache, TokenIssuer, check_token

from .conftest import FakeClock, add_raw_files, local_topology

KEY = "test-secret-of-at-least-32-bytes-length"
ISS = "https://iam.example.org/"


def test_tokens_carry_audience_and_scope_and_refresh_before_expiry(clock: FakeClock) -> None:
    issuer = TokenIssuer(ISS, KEY, lifetime=600)
    cache = TokenCache(issuer, clock=clock, refresh_margin=60)
    tok = cache("JINR", "storage.read")
    opts = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    claims = jwt.decode(tok, KEY, algorithms=["HS256"], audience="JINR", options=opts)
    assert claims["scope"] == "storage.read:/" and claims["iss"] == ISS
    assert cache("JINR", "storage.read") == tok and cache.issued == 1
    clock.advance(541)  # 59 s left: refreshed before use
    tok2 = cache("JINR", "storage.read")
    assert tok2 != tok and cache.issued == 2
    check_token(tok2, key=KEY, audience="JINR", scope="storage.read", issuer=ISS, now=clock())
    with pytest.raises(TransferFailure, match=r"scope storage\.create not in") as info:
        check_token(tok2, key=KEY, audience="JINR", scope="storage.create", issuer=ISS, now=clock())
    assert info.value.error_class == "token_refused" and info.value.permanent
    with pytest.raises(TransferFailure, match="refused the token") as info:
        check_token(tok2, key=KEY, audience="CNAF", scope="storage.read", issuer=ISS, now=clock())
    assert info.value.permanent
    with pytest.raises(TransferFailure) as info:
        check_token(
            tok2, key=KEY, audience="JINR", scope="storage.read", issuer=ISS, now=clock() + 9999
        )
    assert info.value.error_class == "token_expired" and not info.value.permanent


def test_site_refusing_the_token_fails_the_request_permanently(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    topo = local_topology(
        tmp_path, rules="  - {name: r, kind: raw, copies: 2, sites: [CNAF, JINR]}"
    )
    good = TokenCache(TokenIssuer(ISS, KEY), clock=clock)
    wrong = TokenCache(TokenIssuer("https://rogue.example.org/", KEY), clock=clock)
    storages = {n: LocalStorage(n, s.root) for n, s in topo.sites.items()}
    storages["CNAF"] = GuardedStorage(storages["CNAF"], good, key=KEY, issuer=ISS, clock=clock)
    storages["JINR"] = GuardedStorage(storages["JINR"], wrong, key=KEY, issuer=ISS, clock=clock)
    rep = Replicator(catalog, topo, storages=storages, clock=clock)  # type: ignore[arg-type]
    [fid] = add_raw_files(rep, tmp_path, run=4, n=1)
    rep.apply_rules()
    rep.run(advance=clock.advance)
    assert rep.ledger.find(fid, "CNAF").state == "done"
    jinr = rep.ledger.find(fid, "JINR")
    assert jinr.state == "failed"
    [att] = rep.ledger.attempts(jinr.id)
    assert att.error_class == "token_refused" and "JINR refused the token" in att.message
