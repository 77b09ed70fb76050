"""schemathesis against the portal's OpenAPI document, in-process over the ASGI app.

Property-based: every documented operation (the SSE stream excepted: it never ends) gets
valid and invalid requests; no 500, only documented status codes, responses that match
their schema. Then, for every operation the document lists: writes without a token get
401, with a ``read`` token 403; huge page sizes and malformed filters get 422 with the
reason in ``detail``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jaas.kup.ledger import Ledger
from jaas.portal.app import create_app
from jaas.portal.auth import TokenStore
from jaas.portal.settings import PortalSettings
from jaas.portal.source import LedgerSource
from tests.portal.conftest import CONFIG, fill

WRITES = {"post", "put", "patch", "delete"}
EXAMPLES = 15  # per operation and mode: the whole run stays well under a minute


@dataclass
class Portal:
    app: FastAPI
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    ledger = Ledger(f"sqlite:///{tmp / 'kup.db'}", CONFIG)
    fill(ledger, tmp)
    store = TokenStore(ledger.engine)
    tokens = {s: store.create(f"{s}-user", s)[0] for s in ("read", "operate")}
    app = create_app(PortalSettings(db_url=ledger.url), LedgerSource(ledger))
    yield Portal(app, tokens)
    ledger.close()


@pytest.fixture(scope="module")
def doc(portal: Portal) -> dict[str, Any]:
    with TestClient(portal.app) as c:
        body: dict[str, Any] = c.get("/api/openapi.json").json()
    return body


def _schema(portal: Portal) -> Any:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", portal.app)
    return schema.exclude(path="/api/stream")


@pytest.mark.slow  # ~10-30 s per mode on the loaded project machine
@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_every_operation_honours_its_documented_contract(portal: Portal, mode: Any) -> None:
    """Driven through schemathesis' strategies (its pytest loader does not run on pytest 9)."""
    operate = f"Bearer {portal.tokens['operate']}"
    ran = []
    for result in _schema(portal).get_all_operations():
        op = result.ok()

        @hypothesis.given(case=op.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case: Any) -> None:
            if mode is schemathesis.GenerationMode.POSITIVE and case.query:
                case.query.pop("after", None)  # opaque cursor: only a page's `next` is valid
            headers = dict(case.headers or {})
            if not any(k.lower() == "authorization" for k in headers):
                headers["Authorization"] = operate  # reach the route's logic
            case.call_and_validate(headers=headers)

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            # nothing invalid to send (e.g. no parameter but the Authorization header)
            assert mode is schemathesis.GenerationMode.NEGATIVE, op.label
            continue
        ran.append(op.label)
    assert any("/api/actions/retry" in label for label in ran), ran
    assert any("/api/jobs" in label for label in ran), ran


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in WRITES | {"get"}
    ]


def _concrete(path: str) -> str:
    return path.replace("{", "x").replace("}", "")  # any value of a path parameter


def test_every_write_refuses_no_token_401_and_read_token_403(portal: Portal, doc) -> None:
    writes = [(m, p) for m, p, _ in _operations(doc) if m in WRITES]
    assert ("post", "/api/actions/retry") in writes
    with TestClient(portal.app) as c:
        for method, path in writes:
            url = _concrete(path)
            r = c.request(method, url, json={})
            assert r.status_code == 401, (method, path, r.text)
            assert "scope" in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"
            bad = c.request(method, url, json={}, headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401, (method, path)
            read = {"Authorization": f"Bearer {portal.tokens['read']}"}
            r = c.request(method, url, json={}, headers=read)
            assert r.status_code == 403, (method, path, r.text)
            assert "needs 'operate'" in r.json()["detail"]


def test_huge_page_sizes_and_malformed_filters_get_422_with_the_reason(portal: Portal, doc) -> None:
    paged = [
        path
        for m, path, op in _operations(doc)
        if m == "get" and any(p["name"] == "limit" for p in op.get("parameters", []))
    ]
    assert "/api/jobs" in paged
    with TestClient(portal.app) as c:
        for path in paged:
            for limit in (10**9, 0, -1, "many"):
                r = c.get(_concrete(path), params={"limit": limit})
                assert r.status_code == 422, (path, limit, r.text)
                assert r.json()["detail"].startswith("query.limit:"), r.json()
        for params, reason in (
            ({"state": "exploded"}, "query.state: Input should be"),
            ({"sort": "id; drop table kup_jobs"}, "query.sort:"),
            ({"order": "sideways"}, "query.order:"),
            ({"stage": "s" * 65}, "query.stage:"),
            ({"file": "f" * 513}, "query.file:"),
        ):
            for path in ("/api/jobs", "/api/jobs.csv"):
                r = c.get(path, params=params)
                assert r.status_code == 422, (path, params, r.text)
                assert reason in r.json()["detail"] and "\n" not in r.json()["detail"]
        for after in ("%%%", "bm90IGpzb24", "WyJ4IiwgMV0", "WzFd"):  # ["x", 1], [1]
            r = c.get("/api/jobs", params={"after": after, "sort": "attempts"})
            assert r.status_code == 422 and "cursor" in r.json()["detail"], after


def test_the_schema_run_covers_every_operation_but_the_stream(doc) -> None:
    ops = {(m, p) for m, p, _ in _operations(doc)}
    assert ("get", "/api/stream") in ops and len(ops) >= 8
