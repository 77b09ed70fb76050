"""The portal's FastAPI application: :func:`create_app` builds it from one settings object.

Routes (all under ``/api``, documented in the OpenAPI document at ``/api/openapi.json``):
summary, jobs (filtered, sorted, keyset-paged; CSV export), a file's history, alerts,
the retry action (preview, then confirm with the plan id; audited), the live stream
(SSE) and its polling fallback. The built SPA is served at ``/`` after the API routes.
Every bad input gets a 4xx with a one-line ``detail``; mutating routes always need a
token with the ``operate`` scope, reads need ``read`` when ``settings.auth`` is on.
"""

import contextlib
import csv
import io
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from jaas._version import __version__
from jaas.errors import ConfigError, JaasError, NotInCatalogError, PipelineError
from jaas.kup.config import load_stages
from jaas.kup.ledger import Ledger
from jaas.kup.states import State
from jaas.portal.auth import Authenticator, AuthError, Principal, TokenStore
from jaas.portal.fastpath import ResponseCache
from jaas.portal.schemas import (
    AlertOut,
    ErrorOut,
    FileHistory,
    Frame,
    JobOut,
    JobPage,
    JobSort,
    RetryPreview,
    RetryRequest,
    RetryResult,
    Scope,
    SortOrder,
    Summary,
    WhoAmI,
)
from jaas.portal.settings import PortalSettings
from jaas.portal.source import JobFilter, LedgerSource
from jaas.portal.stream import Hub

__all__ = ["SETTINGS_ENV", "app_from_env", "create_app"]

SETTINGS_ENV = "JAAS_PORTAL_SETTINGS"  # the settings (JSON) of each uvicorn worker
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no or invalid credential"},
    403: {"model": ErrorOut, "description": "credential lacks the scope"},
    422: {"model": ErrorOut, "description": "invalid parameter (the reason in detail)"},
}
_CSV_FIELDS = list(JobOut.model_fields)
_FRAMES = TypeAdapter(list[Frame])


# dependencies without I/O are async: FastAPI runs a sync one in a thread, per request
async def get_source(request: Request) -> LedgerSource:
    source: LedgerSource = request.app.state.source
    return source


async def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


LedgerDep = Annotated[LedgerSource, Depends(get_source)]
# the window of the dashboard's history views, in minutes (a week at most)
MinutesQ = Annotated[int, Query(ge=1, le=7 * 24 * 60, description="window")]
HubDep = Annotated[Hub, Depends(get_hub)]


def _principal(request: Request, authorization: str | None) -> Principal | None:
    auth: Authenticator = request.app.state.auth
    return auth.principal(authorization)


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller, who must hold ``scope`` (reads are open when auth is off)."""

    async def dep(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        # on the event loop when the token lookup is cached on a cheap change token
        # (SQLite), in a thread when it may be a round trip (PostgreSQL)
        source: LedgerSource = request.app.state.source
        if source.cache.inline:
            who = _principal(request, authorization)
        else:
            who = await run_in_threadpool(_principal, request, authorization)
        settings: PortalSettings = request.app.state.settings
        if who is None:
            if scope is Scope.READ and not settings.auth:
                return Principal("anonymous", Scope.READ)
            raise AuthError(401, f"this needs a token with the {scope.value!r} scope")
        if not who.allows(scope):
            raise AuthError(
                403, f"{who.name} has scope {who.scope.value!r}, this needs {scope.value!r}"
            )
        return who

    return dep


ReaderDep = Annotated[Principal, Depends(require(Scope.READ))]
OperatorDep = Annotated[Principal, Depends(require(Scope.OPERATE))]


def _one_line(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "request"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI cannot even decode (e.g. not UTF-8)
            return JSONResponse({"detail": f"body: {exc.detail}"}, status_code=422)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(JaasError)
    async def _jaas(_: Request, exc: JaasError) -> JSONResponse:
        status = 404 if isinstance(exc, NotInCatalogError) else 422
        if isinstance(exc, PipelineError):
            status = 409
        return JSONResponse({"detail": str(exc).strip("'\"")}, status_code=status)


async def _filter(
    stage: Annotated[str | None, Query(max_length=64, description="exact stage name")] = None,
    state: Annotated[State | None, Query(description="exact job state")] = None,
    file: Annotated[str | None, Query(max_length=512, description="substring of the file")] = None,
) -> JobFilter:
    return JobFilter(stage, None if state is None else state.value, file)


FilterDep = Annotated[JobFilter, Depends(_filter)]


@dataclass(frozen=True)
class JobOrder:
    sort: JobSort
    order: SortOrder


async def _order(sort: JobSort = JobSort.FILE, order: SortOrder = SortOrder.ASC) -> JobOrder:
    return JobOrder(sort, order)


OrderDep = Annotated[JobOrder, Depends(_order)]


def _add_routes(app: FastAPI, settings: PortalSettings) -> None:
    page_max = settings.page_max

    @app.get("/api/healthz", response_model=dict[str, str], tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness (no auth, no database): ``{"status": "ok"}``."""
        return {"status": "ok"}

    @app.get("/api/whoami", response_model=WhoAmI, responses=_ERRORS, tags=["auth"])
    def whoami(who: ReaderDep) -> WhoAmI:
        """Who the credential sent is, and its scope (``anonymous`` read without one)."""
        return WhoAmI(name=who.name, scope=who.scope)

    @app.get("/api/summary", response_model=Summary, responses=_ERRORS, tags=["summary"])
    def summary(source: LedgerDep, _: ReaderDep) -> Summary:
        """Jobs by stage and state, and active alerts by severity."""
        return source.summary()

    @app.get("/api/jobs", response_model=JobPage, responses=_ERRORS, tags=["jobs"])
    def jobs(
        source: LedgerDep,
        _: ReaderDep,
        flt: FilterDep,
        order: OrderDep,
        limit: Annotated[int, Query(ge=1, le=page_max, description="page size")] = 50,
        after: Annotated[str | None, Query(max_length=2048, description="cursor")] = None,
    ) -> JobPage:
        """Jobs filtered by stage/state/file, sorted, keyset-paged (``after`` = ``next``)."""
        return source.jobs(flt, sort=order.sort, order=order.order, limit=limit, after=after)

    @app.get(
        "/api/jobs.csv",
        responses={**_ERRORS, 200: {"content": {"text/csv": {}}, "description": "CSV"}},
        tags=["jobs"],
    )
    def jobs_csv(
        source: LedgerDep, _: ReaderDep, flt: FilterDep, order: OrderDep
    ) -> StreamingResponse:
        """Every job matching the filter, as CSV (same filters and sort as ``/api/jobs``)."""
        chunks = source.iter_jobs(flt, sort=order.sort, order=order.order)
        first = next(chunks)  # a bad filter fails here, before the 200 is sent

        def rows() -> Iterator[str]:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS)
            w.writeheader()
            for chunk in itertools.chain([first], chunks):
                for j in chunk:
                    w.writerow(j.model_dump(mode="json"))
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()

        headers = {"Content-Disposition": 'attachment; filename="jobs.csv"'}
        return StreamingResponse(rows(), media_type="text/csv", headers=headers)

    @app.get(
        "/api/files/{file}",
        response_model=FileHistory,
        responses={**_ERRORS, 404: {"model": ErrorOut, "description": "unknown file"}},
        tags=["files"],
    )
    def file_history(source: LedgerDep, _: ReaderDep, file: str) -> FileHistory:
        """A file's jobs in chain order, each with its attempts, and the audit of actions."""
        return source.history(file)

    @app.get("/api/alerts", response_model=list[AlertOut], responses=_ERRORS, tags=["alerts"])
    def alerts(
        source: LedgerDep,
        _: ReaderDep,
        active: bool = True,
        limit: Annotated[int, Query(ge=1, le=page_max)] = 100,
    ) -> list[AlertOut]:
        """Active alerts (most severe first) or, with ``active=false``, the latest raised."""
        return source.alerts(active=active, limit=limit)

    @app.post(
        "/api/actions/retry",
        response_model=RetryPreview | RetryResult,
        responses={**_ERRORS, 409: {"model": ErrorOut, "description": "plan changed"}},
        tags=["actions"],
    )
    def retry(
        source: LedgerDep, who: OperatorDep, body: RetryRequest
    ) -> RetryPreview | RetryResult:
        """Without ``plan``: preview exactly which jobs would be re-queued. With the
        preview's ``plan``: re-queue them (audited with the caller's name), unless the
        selection changed meanwhile (409: preview again)."""
        if body.plan is None:
            return source.retry_preview(file=body.file, stage=body.stage, states=body.states)
        # the plan is checked in the retry's own transaction
        n = source.retry(who=who.name, **body.model_dump())
        return RetryResult(plan=body.plan, retried=n, who=who.name)

    @app.get("/api/frames", response_model=list[Frame], responses=_ERRORS, tags=["live"])
    async def frames(
        hub: HubDep,
        _: ReaderDep,
        after: Annotated[int | None, Query(ge=0, description="last frame id seen")] = None,
    ) -> Response:
        """Polling fallback of the stream: frames after ``after`` (a snapshot if unknown)."""
        # the hub's frames are typed already: serialised once, not validated again
        return Response(_FRAMES.dump_json(hub.since(after)), media_type="application/json")

    @app.get(
        "/api/stream",
        responses={**_ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "SSE"}},
        tags=["live"],
    )
    async def stream(
        hub: HubDep,
        _: ReaderDep,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> EventSourceResponse:
        """Server-sent events: one ``Frame`` per event (``id:`` = frame id, ``event:`` =
        its type); resume with ``Last-Event-ID``; a heartbeat comment keeps it open."""
        last = int(last_event_id) if last_event_id and last_event_id.isdigit() else None

        async def events() -> AsyncIterator[dict[str, str]]:
            async for f in hub.follow(last):
                yield {"id": str(f.id), "event": f.type, "data": f.model_dump_json()}

        return EventSourceResponse(events(), ping=settings.heartbeat)


def _include_views(app: FastAPI) -> None:
    # the view routers import this module's dependencies, so they are imported here
    import importlib

    for name in ("dashboard", "runs", "alerts", "actions", "transfers", "quality", "lag"):
        app.include_router(importlib.import_module(f"jaas.portal.routes_{name}").router)


class SPAFiles(StaticFiles):
    """The built SPA; unknown paths outside ``/api`` get ``index.html`` (client routes)."""

    async def get_response(self, path: str, scope: Any) -> Any:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or path.startswith("api"):
                raise
            return await super().get_response("index.html", scope)


class ChangesDropCache:
    """ASGI middleware: after a request that may write (not GET/HEAD/OPTIONS), drop the
    source's cached reads, so the writer reads its own change at once."""

    def __init__(self, app: Any, source: LedgerSource) -> None:
        self.app, self.source = app, source

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _SAFE:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.source.changed()


def app_from_env() -> FastAPI:
    """The app of one uvicorn worker process (``uvicorn --factory``): settings from the
    JSON in the environment variable ``JAAS_PORTAL_SETTINGS`` (``jaas portal --workers``)."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ConfigError(f"{SETTINGS_ENV} is not set: start the portal with `jaas portal`")
    return create_app(PortalSettings.model_validate_json(text))


def create_app(settings: PortalSettings, source: LedgerSource | None = None) -> FastAPI:
    """The portal app on ``settings.db_url`` (or on a given source, e.g. in tests)."""
    if source is None:
        source = LedgerSource(Ledger(settings.db_url, load_stages(settings.stages)))
    if settings.cache_interval is not None:
        source.cache.interval = settings.cache_interval
    hub = Hub(source, settings.stream_interval, settings.stream_history)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            await hub.stop()
            from jaas.portal.routes_dashboard import close_live

            close_live(app.state)
            source.close()

    app = FastAPI(
        title="jaas portal",
        version=__version__,
        description="Operator portal of jaas keep-up production: jobs, files, alerts, actions.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.source = source
    app.state.hub = hub
    # token lookups are cached on the same database changes as the reads
    app.state.auth = Authenticator(settings, TokenStore(source.ledger.engine, source.cache))
    _install_handlers(app)
    _add_routes(app, settings)
    _include_views(app)
    if settings.static_dir is not None:
        if not settings.static_dir.is_dir():
            raise ConfigError(f"{settings.static_dir}: no built SPA here (run `make portal-ui`)")
        app.mount("/", SPAFiles(directory=settings.static_dir, html=True), name="spa")
    app.add_middleware(ChangesDropCache, source=source)
    # outermost: a repeated read is answered before FastAPI's routing and validation
    app.add_middleware(ResponseCache, source=source, auth=app.state.auth, settings=settings)
    return app
