"""The new views on PostgreSQL (the production database): every route, one ledger."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from jaas.kup.alerts import Alert, AlertStore, Severity
from jaas.kup.ledger import Ledger
from jaas.portal.app import create_app
from jaas.portal.auth import TokenStore
from jaas.portal.settings import PortalSettings
from jaas.portal.source import LedgerSource
from tests.portal.conftest import CONFIG, N_DONE, fill
from tests.portal.test_views_runs import _record
from tests.portal.test_views_transfers import replicate


def test_views_and_actions_on_postgres(pg_database_url, tmp_path):
    ledger = Ledger(pg_database_url, CONFIG)
    try:
        fill(ledger, tmp_path)
        op = {"Authorization": "Bearer " + TokenStore(ledger.engine).create("op", "operate")[0]}
        AlertStore(ledger.engine).sync([Alert("lag", "jaas-kup.b", Severity.WARNING, "WARN")])
        _record(ledger, time.time(), 2, 1, fpm=2.0)
        app = create_app(PortalSettings(db_url=pg_database_url), LedgerSource(ledger))
        with TestClient(app) as c:
            assert c.get("/api/dashboard/history").json()["lag"][1]["lag"] == 2
            (run,) = c.get("/api/runs").json()
            assert run["stages"][0]["done"] == N_DONE
            (alert,) = c.get("/api/alerts/instances").json()
            assert c.post(f"/api/alerts/{alert['id']}/ack", json={}, headers=op).status_code == 200
            body = {"subject": "jaas-kup.b", "minutes": 5}
            assert c.post("/api/alerts/silence", json=body, headers=op).status_code == 200
            (alert,) = c.get("/api/alerts/instances").json()
            assert alert["acked_by"] == "token:op" and alert["silenced_until"] is not None
            pre = c.post("/api/actions/replay", json={"run": 1}, headers=op).json()
            done = c.post(
                "/api/actions/replay", json={"run": 1, "plan": pre["plan"]}, headers=op
            ).json()
            assert done["changed"] == 1
            reset = {"files": ["run1_0001.raw"], "stage": "a"}
            pre = c.post("/api/actions/reset", json=reset, headers=op).json()
            done = c.post(
                "/api/actions/reset", json={**reset, "plan": pre["plan"]}, headers=op
            ).json()
            assert done["changed"] == 2
            assert c.get("/api/transfers").json()["configured"] is False
            replicate(ledger)
            assert c.get("/api/transfers").json()["configured"] is True
            assert len(c.get("/api/files/run1_0001.raw/replicas").json()) == 1
            assert c.get("/api/quality").json()["available"] is False
    finally:
        ledger.close()
