"""`jaas portal token revoke` refuses the very next request on both worker processes of
`jaas portal --workers 2`, although each had the token and the answer cached."""

from __future__ import annotations

import httpx

from tests.portal.test_cli import jaas, state_dir  # noqa: F401 (fixture)
from tests.portal.test_workers import _worker_of, two_workers  # noqa: F401 (fixture)


def test_revoked_token_is_refused_at_once_on_both_workers(two_workers, state_dir):  # noqa: F811
    made = jaas("portal", "token", "create", str(state_dir), "--name", "leaving")
    assert made.returncode == 0, made.stderr
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
    clients: dict[int, httpx.Client] = {}  # worker -> a kept-alive connection to it
    try:
        for _ in range(400):
            c = httpx.Client(base_url=two_workers, headers=auth, timeout=10)
            (snap,) = c.get("/api/frames").json()
            w = _worker_of(snap["id"])
            if w in clients:
                c.close()
            else:
                clients[w] = c
            if len(clients) == 2:
                break
        assert len(clients) == 2, "only one worker answered"
        for c in clients.values():
            first, again = c.get("/api/summary"), c.get("/api/summary")  # kept, then replayed
            assert first.status_code == again.status_code == 200
            assert again.content == first.content and "etag" in again.headers
            assert c.get("/api/whoami").json()["name"] == "token:leaving"

        listed = jaas("portal", "token", "list", str(state_dir))
        assert "leaving" in listed.stdout
        tid = next(ln.split()[0] for ln in listed.stdout.splitlines() if "leaving" in ln)
        revoked = jaas("portal", "token", "revoke", str(state_dir), tid.strip("#"))
        assert revoked.returncode == 0, revoked.stderr

        other = jaas("portal", "token", "create", str(state_dir), "--name", "staying")
        still = {"Authorization": f"Bearer {other.stdout.strip()}"}
        for w, c in clients.items():
            for path in ("/api/summary", "/api/frames", "/api/whoami"):
                r = c.get(path)
                assert r.status_code == 401, f"worker {w} {path}: {r.status_code}"
                assert r.json()["detail"] == "unknown or revoked API token"
            (snap,) = c.get("/api/frames", headers=still).json()
            assert _worker_of(snap["id"]) == w  # it was that worker's connection
    finally:
        for c in clients.values():
            c.close()
