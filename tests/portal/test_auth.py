"""API tokens (hashed, scoped, revocable) and OIDC bearer JWTs checked against a JWKS."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from jaas.errors import ConfigError
from jaas.portal.auth import TokenStore, tokens_table
from jaas.portal.settings import PortalSettings, check_bind

RETRY = "/api/actions/retry"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_stored_hashed_and_revocable(ledger):
    store = TokenStore(ledger.engine)
    secret, row = store.create("alice", "operate")
    with ledger.engine.connect() as conn:
        stored = conn.execute(select(tokens_table.c.hash)).scalars().all()
    assert secret not in stored and len(stored[0]) == 64
    assert store.lookup(secret).scope == "operate"
    store.revoke(row.id)
    assert store.lookup(secret) is None
    assert store.list()[0].revoked is not None
    with pytest.raises(ConfigError, match="no active token with id 99"):
        store.revoke(99)
    with pytest.raises(ConfigError, match="unknown scope 'root'"):
        store.create("bob", "root")


def test_mutating_route_needs_operate_scope(client, tokens):
    assert client.post(RETRY, json={}).status_code == 401
    assert client.post(RETRY, json={}, headers=bearer("jaas_nope")).status_code == 401
    r = client.post(RETRY, json={}, headers=bearer(tokens["read"]))
    assert r.status_code == 403 and "needs 'operate'" in r.json()["detail"]
    assert client.post(RETRY, json={}, headers=bearer(tokens["operate"])).status_code == 200
    assert client.post(RETRY, json={}, headers=bearer(tokens["admin"])).status_code == 200
    r = client.post(RETRY, json={}, headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]


def test_whoami_tells_the_scope(client, tokens):
    assert client.get("/api/whoami").json() == {"name": "anonymous", "scope": "read"}
    me = client.get("/api/whoami", headers=bearer(tokens["operate"])).json()
    assert me == {"name": "token:operate-user", "scope": "operate"}


def test_reads_need_a_token_when_auth_is_on(make_app, tokens):
    with TestClient(make_app(auth=True)) as c:
        assert c.get("/api/summary").status_code == 401
        assert c.get("/api/summary", headers=bearer(tokens["read"])).status_code == 200


def test_liveness_needs_no_token_even_with_auth_on(make_app):
    with TestClient(make_app(auth=True)) as c:
        assert c.get("/api/healthz").json() == {"status": "ok"}
        assert c.get("/api/summary").status_code == 401


def test_token_store_on_a_fresh_database_migrates_it_to_head(tmp_path):
    from jaas import db

    engine = db.make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        secret, row = TokenStore(engine).create("ops", "operate")
        assert db.current_revision(engine) == db.head_revision()
        assert TokenStore(engine).lookup(secret) is not None and row.scope.value == "operate"
    finally:
        engine.dispose()


def test_non_loopback_bind_refused_without_auth():
    with pytest.raises(ConfigError, match="without auth"):
        check_bind(PortalSettings(db_url="sqlite://", host="0.0.0.0"))
    check_bind(PortalSettings(db_url="sqlite://", host="0.0.0.0", auth=True))
    check_bind(PortalSettings(db_url="sqlite://", host="::1"))


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(key, kid: str = "k1") -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}


def mint(key, *, aud="jaas-portal", scope="jaas.operate", minutes=5, kid="k1", **extra) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": "carol",
        "aud": aud,
        "iss": "https://iam.example",
        "scope": scope,
        "iat": now,
        "exp": now + dt.timedelta(minutes=minutes),
        **extra,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def jwks_server(rsa_key):
    body = json.dumps(jwks_of(rsa_key)).encode()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/jwks.json"
    srv.shutdown()
    srv.server_close()


def test_jwt_from_jwks_url_is_validated_and_scopes_mapped(make_app, rsa_key, jwks_server):
    app = make_app(
        oidc_audience="jaas-portal", oidc_issuer="https://iam.example", oidc_jwks_url=jwks_server
    )
    with TestClient(app) as c:
        r = c.post(RETRY, json={}, headers=bearer(mint(rsa_key)))
        assert r.status_code == 200
        # audit name comes from the token's subject
        dead = r.json()["jobs"][0]["file"]
        plan = r.json()["plan"]
        ok = c.post(RETRY, json={"file": dead, "plan": plan}, headers=bearer(mint(rsa_key)))
        assert ok.json()["who"] == "oidc:carol"
        r = c.post(RETRY, json={}, headers=bearer(mint(rsa_key, scope="jaas.read")))
        assert r.status_code == 403
        r = c.post(RETRY, json={}, headers=bearer(mint(rsa_key, aud="other")))
        assert r.status_code == 401 and "audience" in r.json()["detail"].lower()
        r = c.post(RETRY, json={}, headers=bearer(mint(rsa_key, minutes=-5)))
        assert r.status_code == 401 and "expired" in r.json()["detail"].lower()
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        r = c.post(RETRY, json={}, headers=bearer(mint(other)))
        assert r.status_code == 401 and "signature" in r.json()["detail"].lower()
        r = c.post(RETRY, json={}, headers=bearer("a.b.c"))
        assert r.status_code == 401


def test_jwt_with_jwks_file_and_groups_claim(make_app, rsa_key, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_of(rsa_key)))
    app = make_app(
        oidc_audience="jaas-portal",
        oidc_jwks_file=path,
        oidc_scope_map={"/juno/shifter": "operate"},
    )
    with TestClient(app) as c:
        tok = mint(rsa_key, scope="openid", groups=["/juno/shifter"])
        assert c.post(RETRY, json={}, headers=bearer(tok)).status_code == 200
        r = c.post(RETRY, json={}, headers=bearer(mint(rsa_key, kid="zz")))
        assert r.status_code == 401 and "unknown key id" in r.json()["detail"]
