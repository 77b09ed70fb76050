"""Answers replayed as bytes between database changes (ETag, 304), over a real uvicorn:
the route does not run again, a change or a revocation takes effect at the next request,
errors are never replayed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from jaas.kup.ledger import Ledger
from jaas.portal.auth import TokenStore
from jaas.portal.cache import ChangeToken, ViewCache
from jaas.portal.fastpath import cacheable
from jaas.portal.settings import PortalSettings
from tests.portal.conftest import CONFIG, N_DONE, Served


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _submit(ledger: Ledger, tmp_path: Path, name: str) -> None:
    """A new file submitted by another connection (as a pipeline process would)."""
    other = Ledger(ledger.url, CONFIG)
    (tmp_path / name).write_bytes(b"z")
    other.submit_files([tmp_path / name])
    other.close()


def test_repeat_is_replayed_until_the_database_changes(make_app, ledger, tmp_path):
    app = make_app()
    source = app.state.source
    with Served(app) as srv, httpx.Client(base_url=srv.url) as c:
        first = c.get("/api/jobs", params={"stage": "a", "limit": 3})
        assert first.status_code == 200 and first.json()["total"] == N_DONE + 2
        etag = first.headers["etag"]
        hits = source.cache.hits
        again = c.get("/api/jobs", params={"stage": "a", "limit": 3})
        assert again.content == first.content and again.headers["etag"] == etag
        assert again.headers["content-type"] == "application/json"
        assert source.cache.hits == hits  # the route (and its cached read) did not run
        unchanged = c.get(
            "/api/jobs", params={"stage": "a", "limit": 3}, headers={"If-None-Match": etag}
        )
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["etag"] == etag

        _submit(ledger, tmp_path, "run1_0100.raw")
        changed = c.get(
            "/api/jobs", params={"stage": "a", "limit": 3}, headers={"If-None-Match": etag}
        )
        assert changed.status_code == 200 and changed.json()["total"] == N_DONE + 3
        assert changed.headers["etag"] != etag
        # another query string is another answer
        other = c.get("/api/jobs", params={"stage": "a", "limit": 2})
        assert len(other.json()["items"]) == 2


def test_write_through_this_app_is_seen_at_once(make_app, tokens):
    app = make_app()
    with Served(app) as srv, httpx.Client(base_url=srv.url) as c:
        before = c.get("/api/summary").json()["jobs"]["a"]
        assert before["dead"] == 1
        op = _bearer(tokens["operate"])
        plan = c.post("/api/actions/retry", json={"states": ["dead"]}, headers=op).json()
        done = c.post(
            "/api/actions/retry", json={"states": ["dead"], "plan": plan["plan"]}, headers=op
        )
        assert done.status_code == 200 and done.json()["retried"] == 1
        after = c.get("/api/summary").json()["jobs"]["a"]
        assert after.get("dead", 0) == 0 and after["queued"] == before.get("queued", 0) + 1


def test_errors_are_not_replayed(make_app):
    with Served(make_app()) as srv, httpx.Client(base_url=srv.url) as c:
        for _ in range(2):
            bad = c.get("/api/jobs", params={"limit": 0})
            assert bad.status_code == 422 and "limit" in bad.json()["detail"]
            assert "etag" not in bad.headers
            missing = c.get("/api/files/nope.raw")
            assert missing.status_code == 404 and "nope.raw" in missing.json()["detail"]


def test_replay_needs_the_same_credential_as_the_route(make_app, ledger, tokens):
    app = make_app(auth=True)
    store = TokenStore(ledger.engine)  # another store, as `jaas portal token` uses
    secret, row = store.create("shift", "read")
    with Served(app) as srv, httpx.Client(base_url=srv.url) as c:
        for _ in range(2):  # the second is a replay
            ok = c.get("/api/summary", headers=_bearer(secret))
            assert ok.status_code == 200
        assert c.get("/api/summary").status_code == 401
        nope = c.get("/api/summary", headers=_bearer("jaas_not-a-token"))
        assert nope.status_code == 401 and nope.json()["detail"] == "unknown or revoked API token"
        assert c.get("/api/summary", headers={"Authorization": "Basic x"}).status_code == 401
        assert c.get("/api/summary", headers=_bearer(tokens["admin"])).status_code == 200

        store.revoke(row.id)
        revoked = c.get("/api/summary", headers=_bearer(secret))
        assert revoked.status_code == 401, "a revoked token must be refused at once"
        assert c.get("/api/whoami", headers=_bearer(secret)).status_code == 401
        assert c.get("/api/summary", headers=_bearer(tokens["read"])).status_code == 200


def test_token_lookups_are_cached_only_on_a_token_read_every_request(ledger):
    store = TokenStore(ledger.engine)
    secret, row = store.create("shift", "read")
    every = TokenStore(ledger.engine, ViewCache(ChangeToken(ledger.engine)))
    rarely = TokenStore(ledger.engine, ViewCache(ChangeToken(ledger.engine), interval=3600))
    assert every.lookup(secret) == rarely.lookup(secret)
    assert every.lookup(secret) is not None and len(every._known) == 1
    assert not rarely._known  # checked every hour: never remembered
    store.revoke(row.id)
    assert every.lookup(secret) is None and rarely.lookup(secret) is None


@pytest.mark.parametrize(
    ("path", "state_dir", "expected"),
    [
        ("/api/summary", None, True),
        ("/api/files/run1_0001.raw", None, True),
        ("/api/files/run1_0001.raw/replicas", None, False),
        ("/api/runs", None, True),
        ("/api/runs", Path("/srv/kup"), False),  # manifests on disk: read every request
        ("/api/frames", None, False),
        ("/api/whoami", None, False),
        ("/api/jobs.csv", None, False),
    ],
)
def test_which_paths_are_replayed(path, state_dir, expected):
    settings = PortalSettings(db_url="sqlite://", state_dir=state_dir)
    assert cacheable(settings)(path) is expected
