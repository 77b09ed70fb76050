"""The portal API on a real ledger: summary, filters, keyset paging, CSV, history, retry."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time

import pytest
from sqlalchemy import insert

from jaas.errors import PipelineError
from jaas.kup.ledger import jobs as jobs_table
from tests.portal.conftest import N_DONE


def test_summary_counts_jobs_by_stage_and_state(client):
    r = client.get("/api/summary")
    assert r.status_code == 200
    body = r.json()
    assert list(body["jobs"]) == ["a", "b"]  # chain order
    assert body["jobs"]["a"] == {"done": N_DONE, "dead": 1, "running": 1}
    assert body["jobs"]["b"] == {"queued": N_DONE}
    assert body["alerts"] == {"info": 0, "warning": 0, "critical": 0}


def test_jobs_filter_by_stage_state_and_file(client):
    r = client.get("/api/jobs", params={"stage": "a", "state": "dead"})
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(j["file"], j["state"]) for j in items] == [(f"run1_{N_DONE:04d}.raw", "dead")]
    assert items[0]["reason"].endswith("bad header at byte 12")
    r = client.get("/api/jobs", params={"file": "0001"})
    assert {(j["file"], j["stage"]) for j in r.json()["items"]} == {
        ("run1_0001.raw", "a"),
        ("run1_0001.raw", "b"),
    }


def test_keyset_paging_visits_every_job_once_in_order(client):
    seen, after = [], None
    while True:
        params = {"limit": 3, "sort": "file", "order": "desc"}
        if after:
            params["after"] = after
        page = client.get("/api/jobs", params=params).json()
        assert page["total"] == 2 * N_DONE + 2
        seen += [(j["file"], j["stage"]) for j in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == 2 * N_DONE + 2
    assert seen == sorted(seen, reverse=True)


def test_bad_input_gets_422_with_the_reason_never_500(client):
    r = client.get("/api/jobs", params={"limit": 100000})
    assert r.status_code == 422
    assert "limit" in r.json()["detail"] and "1000" in r.json()["detail"]
    r = client.get("/api/jobs", params={"state": "exploded"})
    assert r.status_code == 422 and "query.state: Input should be" in r.json()["detail"]
    assert "'dead'" in r.json()["detail"]
    r = client.get("/api/jobs", params={"sort": "'; drop table kup_jobs"})
    assert r.status_code == 422 and "sort" in r.json()["detail"]
    for bad in ("%%%", "bm90IGpzb24", "WzEsMl0"):
        r = client.get("/api/jobs", params={"after": bad})
        assert r.status_code == 422 and "cursor" in r.json()["detail"], bad
    assert client.get("/api/files/nope.raw").status_code == 404
    assert client.get("/api/frames", params={"after": -1}).status_code == 422


def test_csv_export_has_every_matching_job(client):
    r = client.get("/api/jobs.csv", params={"stage": "b"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == N_DONE and {x["state"] for x in rows} == {"queued"}
    assert rows[0]["file"] == "run1_0000.raw"


def test_file_history_joins_jobs_attempts_and_audit(client, tokens):
    dead = f"run1_{N_DONE:04d}.raw"
    h = client.get(f"/api/files/{dead}").json()
    assert [s["job"]["stage"] for s in h["jobs"]] == ["a"]
    (att,) = h["jobs"][0]["attempts"]
    assert att["exit_code"] == 3 and att["classification"] == "deterministic"
    assert att["log_path"].endswith(f"{dead}.1.log")
    assert h["audit"] == []
    auth = {"Authorization": f"Bearer {tokens['operate']}"}
    plan = client.post("/api/actions/retry", json={"file": dead}, headers=auth).json()["plan"]
    client.post(
        "/api/actions/retry", json={"file": dead, "plan": plan, "note": "fixed"}, headers=auth
    )
    audit = client.get(f"/api/files/{dead}").json()["audit"]
    assert [(a["who"], a["action"], a["from_state"], a["note"]) for a in audit] == [
        ("token:operate-user", "retry", "dead", "fixed")
    ]


def test_retry_previews_then_confirms_exactly_the_plan(client, tokens):
    auth = {"Authorization": f"Bearer {tokens['operate']}"}
    preview = client.post("/api/actions/retry", json={"stage": "a"}, headers=auth)
    assert preview.status_code == 200
    body = preview.json()
    assert [j["file"] for j in body["jobs"]] == [f"run1_{N_DONE:04d}.raw"]
    # nothing changed by the preview
    assert client.get("/api/summary").json()["jobs"]["a"]["dead"] == 1
    wrong = client.post("/api/actions/retry", json={"stage": "a", "plan": "0" * 16}, headers=auth)
    assert wrong.status_code == 409 and "preview again" in wrong.json()["detail"]
    done = client.post(
        "/api/actions/retry", json={"stage": "a", "plan": body["plan"]}, headers=auth
    )
    assert done.status_code == 200
    assert done.json() == {"plan": body["plan"], "retried": 1, "who": "token:operate-user"}
    assert "dead" not in client.get("/api/summary").json()["jobs"]["a"]


def test_retry_rejects_bad_body_with_422(client, tokens):
    auth = {"Authorization": f"Bearer {tokens['operate']}"}
    r = client.post("/api/actions/retry", json={"states": ["done"]}, headers=auth)
    assert r.status_code == 422 and "states" in r.json()["detail"]
    r = client.post("/api/actions/retry", json={"bogus": 1}, headers=auth)
    assert r.status_code == 422 and "bogus" in r.json()["detail"]
    r = client.post("/api/actions/retry", content=b"{not json", headers=auth)
    assert r.status_code == 422
    r = client.post(
        "/api/actions/retry",
        content=b"\xff\xfe{",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("body:")


def test_openapi_documents_every_route_and_error_model(client):
    doc = client.get("/api/openapi.json").json()
    assert {
        "/api/healthz",
        "/api/summary",
        "/api/jobs",
        "/api/jobs.csv",
        "/api/files/{file}",
        "/api/alerts",
        "/api/actions/retry",
        "/api/stream",
        "/api/frames",
    } <= set(doc["paths"])
    assert "422" in doc["paths"]["/api/jobs"]["get"]["responses"]
    assert "ErrorOut" in doc["components"]["schemas"]
    assert client.get("/api/healthz").json() == {"status": "ok"}


def test_openapi_module_prints_the_document_for_the_client_generator():
    from jaas.portal.openapi import document

    doc = document()
    assert doc["info"]["title"] == "jaas portal"
    frame = doc["components"]["schemas"]["Frame"]
    assert set(frame["properties"]) == {"v", "id", "type", "at", "data"}


def _walk(client, **params) -> list[dict]:
    seen, after = [], None
    while True:
        q = {**params, "limit": 4, **({"after": after} if after else {})}
        r = client.get("/api/jobs", params=q)
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        after = r.json()["next"]
        if after is None:
            return seen


@pytest.mark.parametrize("sort", ["file", "stage", "state", "attempts", "updated"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_every_sort_key_pages_every_job_once_in_order(client, sort, order):
    seen = _walk(client, sort=sort, order=order)
    assert len(seen) == 2 * N_DONE + 2
    assert len({(j["file"], j["stage"]) for j in seen}) == len(seen)
    keys = [j[sort] for j in seen]
    assert keys == sorted(keys, reverse=order == "desc")


def test_filters_combine_in_the_url_and_file_is_a_literal_substring(client):
    seen = _walk(client, stage="b", state="queued", file="_000", sort="file", order="desc")
    assert [j["file"] for j in seen] == [f"run1_{i:04d}.raw" for i in reversed(range(N_DONE))]
    assert client.get("/api/jobs", params={"file": "%"}).json()["total"] == 0  # no LIKE wildcard
    assert client.get("/api/jobs", params={"file": "run_"}).json()["total"] == 0
    r = client.get("/api/jobs.csv", params={"stage": "a", "sort": "state", "order": "desc"})
    states = [x["state"] for x in csv.DictReader(io.StringIO(r.text))]
    assert states == sorted(states, reverse=True) and len(states) == N_DONE + 2


def test_cursor_of_one_sort_is_refused_for_another(client):
    page = client.get("/api/jobs", params={"sort": "file", "limit": 2}).json()
    r = client.get("/api/jobs", params={"sort": "attempts", "after": page["next"]})
    assert r.status_code == 422 and "does not fit sort=attempts" in r.json()["detail"]


def test_retry_confirm_is_refused_when_the_selection_changed_after_the_preview(
    client, tokens, ledger
):
    auth = {"Authorization": f"Bearer {tokens['operate']}"}
    plan = client.post("/api/actions/retry", json={"stage": "a"}, headers=auth).json()["plan"]
    ledger.retry(stage="a", who="someone-else")  # the dead job is taken meanwhile
    r = client.post("/api/actions/retry", json={"stage": "a", "plan": plan}, headers=auth)
    assert r.status_code == 409 and "preview again" in r.json()["detail"]
    whos = [a["who"] for a in ledger.audit_log()]
    assert whos == ["someone-else"]  # the confirm changed nothing


def test_ledger_retry_changes_nothing_when_its_check_refuses(ledger):
    def refuse(rows) -> None:
        assert [r.state for r in rows] == ["dead"]
        raise PipelineError("no")

    with pytest.raises(PipelineError):
        ledger.retry(stage="a", who="x", expect=refuse)
    assert ledger.counts()["a"]["dead"] == 1 and ledger.audit_log() == []


def bulk_jobs(ledger, n: int) -> None:
    """``n`` more jobs straight into the ledger's table (stages a/b, mixed states)."""
    now = dt.datetime.now(dt.UTC)
    states = ["done", "queued", "dead", "failed", "running"]
    keys = [(f"bulk{i:06d}.raw", "ab"[i % 2], "17"[i % 2], states[i % 5]) for i in range(n)]
    cols = ("file", "stage", "version", "state")
    rows = [{**dict(zip(cols, k, strict=True)), "attempts": i % 4} for i, k in enumerate(keys)]
    for i, r in enumerate(rows):
        r["created"], r["updated"] = now, now + dt.timedelta(microseconds=i)
    with ledger.engine.begin() as conn:
        conn.execute(insert(jobs_table), rows)


def test_jobs_list_stays_fast_on_100k_jobs(client, ledger, tokens):
    bulk_jobs(ledger, 100_000)
    slowest = 0.0
    for params in (
        {"sort": "updated", "order": "desc"},
        {"stage": "a", "state": "dead"},
        {"file": "bulk09", "sort": "attempts"},
        {"sort": "file"},
    ):
        after = None
        for _ in range(3):  # first pages and deep pages cost the same
            t0 = time.perf_counter()
            q = {**params, "limit": 100, **({"after": after} if after else {})}
            r = client.get("/api/jobs", params=q)
            slowest = max(slowest, time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            after = r.json()["next"]
    auth = {"Authorization": f"Bearer {tokens['operate']}"}
    t0 = time.perf_counter()
    r = client.post("/api/actions/retry", json={"file": "bulk000002.raw"}, headers=auth)
    slowest = max(slowest, time.perf_counter() - t0)
    assert [(j["file"], j["state"]) for j in r.json()["jobs"]] == [("bulk000002.raw", "dead")]
    assert slowest < 1.0, f"slowest page {slowest:.3f} s on 10^5 jobs"
    print(f"slowest page of 100 on 10^5 jobs: {slowest * 1000:.0f} ms")


@pytest.mark.postgres
def test_keyset_paging_on_postgresql(pg_database_url, tmp_path):
    """The same SQL (row-value keyset, LIKE with escaping, datetime cursor) on PostgreSQL."""
    from jaas.kup.ledger import Ledger
    from jaas.portal.schemas import JobSort, SortOrder
    from jaas.portal.source import JobFilter, LedgerSource
    from tests.portal.conftest import CONFIG, fill

    led = Ledger(pg_database_url, CONFIG)
    try:
        fill(led, tmp_path)
        src = LedgerSource(led)
        for sort in JobSort:
            for order in SortOrder:
                seen, after = [], None
                while True:
                    page = src.jobs(JobFilter(), sort=sort, order=order, limit=3, after=after)
                    seen += page.items
                    if (after := page.next) is None:
                        break
                assert len({(j.file, j.stage) for j in seen}) == len(seen) == 2 * N_DONE + 2
                keys = [getattr(j, sort.value) for j in seen]
                assert keys == sorted(keys, reverse=order is SortOrder.DESC), (sort, order)
        assert src.jobs(JobFilter(file="%")).total == 0
        assert src.jobs(JobFilter(stage="a", state="dead")).total == 1
    finally:
        led.close()


def test_log_tail_is_the_last_lines_of_the_attempts_log(tmp_path):
    from jaas.portal.schemas import LOG_TAIL_BYTES, LOG_TAIL_LINES
    from jaas.portal.source import log_tail

    log = tmp_path / "a.log"
    log.write_bytes(b"".join(b"line %d \xff\n" % i for i in range(5000)))
    tail = log_tail(str(log))
    assert tail is not None
    lines = tail.splitlines()
    assert len(lines) == LOG_TAIL_LINES and lines[-1] == "line 4999 \ufffd"
    assert len(tail.encode()) <= 2 * LOG_TAIL_BYTES
    short = tmp_path / "b.log"
    short.write_text("only\ntwo\n")
    assert log_tail(str(short)) == "only\ntwo"
    assert log_tail(str(tmp_path / "gone.log")) is None
    assert log_tail(str(tmp_path)) is None  # a directory is not a log
    assert log_tail(None) is None
