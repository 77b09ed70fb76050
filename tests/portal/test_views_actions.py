"""Reset and replay: preview exactly what changes, confirm with the plan, 409 if changed."""

from __future__ import annotations

from jaas.kup.states import JobKey
from tests.portal.conftest import N_DONE

DEAD = f"run1_{N_DONE:04d}.raw"


def _op(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['operate']}"}


def test_reset_previews_jobs_and_products_then_confirms_audited(client, ledger, tokens):
    body = {"files": ["run1_0001.raw", "run1_0002.raw"], "stage": "a", "note": "bad calib"}
    pre = client.post("/api/actions/reset", json=body, headers=_op(tokens)).json()
    assert pre["action"] == "reset"
    assert [(j["file"], j["stage"]) for j in pre["jobs"]] == [
        ("run1_0001.raw", "a"),
        ("run1_0001.raw", "b"),
        ("run1_0002.raw", "a"),
        ("run1_0002.raw", "b"),
    ]
    assert [p.rsplit("/", 1)[-1] for p in pre["products"]] == [
        "run1_0001.raw.out",
        "run1_0002.raw.out",
    ]
    done = client.post(
        "/api/actions/reset", json={**body, "plan": pre["plan"]}, headers=_op(tokens)
    )
    assert done.status_code == 200, done.text
    res = done.json()
    assert res["changed"] == 4 and res["who"] == "token:operate-user"
    assert {(i["file"], i["stage"], i["from_state"]) for i in res["items"]} >= {
        ("run1_0001.raw", "a", "done"),
        ("run1_0001.raw", "b", "queued"),
    }
    assert {i["to_state"] for i in res["items"] if i["stage"] == "a"} == {"queued"}
    audit = client.get("/api/files/run1_0001.raw").json()["audit"]
    assert {(a["action"], a["stage"], a["note"]) for a in audit} == {
        ("reset", "a", "bad calib"),
        ("reset", "b", "bad calib"),
    }


def test_a_changed_selection_gets_409_and_nothing_changes(client, ledger, tokens, tmp_path):
    body = {"files": ["run1_0003.raw"], "stage": "b"}
    pre = client.post("/api/actions/reset", json=body, headers=_op(tokens)).json()
    t = ledger.start(JobKey("run1_0003.raw", "b", "7"), worker="w", log_dir=str(tmp_path))
    assert t is not None
    r = client.post("/api/actions/reset", json={**body, "plan": pre["plan"]}, headers=_op(tokens))
    assert r.status_code == 409 and "preview again" in r.json()["detail"]
    assert client.get("/api/files/run1_0003.raw").json()["audit"] == []


def test_replay_by_run_and_stage_requeues_exactly_the_previewed_jobs(client, tokens):
    body = {"run": 1, "stage": "a", "note": "fixed header parser"}
    pre = client.post("/api/actions/replay", json=body, headers=_op(tokens)).json()
    assert [(j["file"], j["state"]) for j in pre["jobs"]] == [(DEAD, "dead")]
    res = client.post(
        "/api/actions/replay", json={**body, "plan": pre["plan"]}, headers=_op(tokens)
    ).json()
    assert res["changed"] == 1
    assert res["items"] == [
        {"file": DEAD, "stage": "a", "version": "1", "from_state": "dead", "to_state": "queued"}
    ]
    other = client.post("/api/actions/replay", json={"run": 2}, headers=_op(tokens)).json()
    assert other["jobs"] == []
    r = client.post(
        "/api/actions/replay", json={"run": 2, "plan": other["plan"]}, headers=_op(tokens)
    )
    assert r.status_code == 409 and "nothing to do" in r.json()["detail"]


def test_actions_refuse_read_scope_and_bad_input(client, tokens):
    read = {"Authorization": f"Bearer {tokens['read']}"}
    body = {"files": ["run1_0001.raw"], "stage": "a"}
    assert client.post("/api/actions/reset", json=body).status_code == 401
    assert client.post("/api/actions/reset", json=body, headers=read).status_code == 403
    assert client.post("/api/actions/replay", json={}, headers=read).status_code == 403
    r = client.post(
        "/api/actions/reset", json={"files": ["run1_0001.raw"], "stage": "zz"}, headers=_op(tokens)
    )
    assert r.status_code == 404 and "zz" in r.json()["detail"]  # names what does not exist
    r = client.post(
        "/api/actions/reset", json={"files": ["nope.raw"], "stage": "a"}, headers=_op(tokens)
    )
    assert r.status_code == 404 and "nope.raw" in r.json()["detail"]
    r = client.post("/api/actions/reset", json={"files": [], "stage": "a"}, headers=_op(tokens))
    assert r.status_code == 422 and "files" in r.json()["detail"]
    r = client.post("/api/actions/replay", json={"states": ["done"]}, headers=_op(tokens))
    assert r.status_code == 422 and "states" in r.json()["detail"]
