"""Alert rules, per-entity instances, acknowledge and silence (scope operate, audited)."""

from __future__ import annotations

from jaas.kup.alerts import Alert, AlertStore, Severity


def _raise(ledger) -> list[dict]:
    store = AlertStore(ledger.engine)
    store.sync(
        [
            Alert("lag", "jaas-kup.b", Severity.CRITICAL, "consumer group jaas-kup.b: STALL"),
            Alert("failure_rate", "a", Severity.WARNING, "stage a: 2 of 5 attempts failed"),
        ]
    )
    return store.active()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_rules_are_listed_with_their_thresholds(client):
    rules = {r["name"]: r for r in client.get("/api/alerts/rules").json()}
    assert set(rules) == {"failure_rate", "stuck_running", "stuck_queued", "lag", "broker_down"}
    assert rules["failure_rate"]["thresholds"]["failure_warn"] == 0.2
    assert rules["stuck_queued"]["thresholds"] == {"queued_stall": 600.0}
    assert "Burrow" in rules["lag"]["description"]


def test_ack_and_silence_are_audited_and_shown_on_the_instances(client, ledger, tokens):
    lag = _raise(ledger)[0]
    assert lag["rule"] == "lag"
    op = _auth(tokens["operate"])
    r = client.post(f"/api/alerts/{lag['id']}/ack", json={"note": "looking"}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["who"] == "token:operate-user" and r.json()["action"] == "ack"
    r = client.post(
        "/api/alerts/silence",
        json={"subject": "a", "minutes": 30, "note": "known bad batch"},
        headers=op,
    )
    assert r.status_code == 200 and r.json()["until"] is not None
    inst = {a["subject"]: a for a in client.get("/api/alerts/instances").json()}
    assert inst["jaas-kup.b"]["acked_by"] == "token:operate-user"
    assert inst["jaas-kup.b"]["ack_note"] == "looking"
    assert inst["jaas-kup.b"]["silenced_until"] is None
    assert inst["a"]["silenced_until"] is not None and inst["a"]["acked_by"] is None
    one = client.get("/api/alerts/instances", params={"subject": "a"}).json()
    assert [a["rule"] for a in one] == ["failure_rate"]
    log = client.get("/api/alerts/actions").json()
    assert [(x["action"], x["subject"], x["note"]) for x in log] == [
        ("silence", "a", "known bad batch"),
        ("ack", "jaas-kup.b", "looking"),
    ]


def test_alert_actions_need_operate_and_valid_input(client, ledger, tokens):
    lag = _raise(ledger)[0]
    r = client.post(f"/api/alerts/{lag['id']}/ack", json={})
    assert r.status_code == 401
    r = client.post(f"/api/alerts/{lag['id']}/ack", json={}, headers=_auth(tokens["read"]))
    assert r.status_code == 403 and "operate" in r.json()["detail"]
    body = {"subject": "a", "minutes": 30}
    r = client.post("/api/alerts/silence", json=body, headers=_auth(tokens["read"]))
    assert r.status_code == 403
    op = _auth(tokens["operate"])
    r = client.post("/api/alerts/999999/ack", json={}, headers=op)
    assert r.status_code == 404 and "no alert with id 999999" in r.json()["detail"]
    r = client.post("/api/alerts/silence", json={"subject": "a", "minutes": 0}, headers=op)
    assert r.status_code == 422 and "minutes" in r.json()["detail"]
    assert client.get("/api/alerts/actions").json() == []
