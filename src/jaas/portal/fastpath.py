"""The bytes of the answers every client repeats, replayed without running the route.

Between two database changes, ``GET /api/summary`` (and the jobs pages, a file's history,
the alerts, the runs) answer every client with the same bytes. :class:`ResponseCache`
is an ASGI middleware that keeps the 200 answer of such a request, keyed on its path and
raw query string, and tagged with the read cache's generation
(:meth:`jaas.portal.cache.ViewCache.generation`): the same change token, so the bytes
are dropped exactly when the cached reads are. A repeat is answered from the bytes after
the same authorisation as the route's (the bearer token or JWT must hold ``read`` when
auth is on); anything else (no or bad credential, a miss, another status, another path)
goes through FastAPI unchanged, so its errors stay what the routes say.

Each answer carries an ``ETag`` (a hash of its bytes); a request whose ``If-None-Match``
names it gets ``304 Not Modified`` with no body.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from jaas.portal.auth import Authenticator, AuthError
from jaas.portal.schemas import Scope
from jaas.portal.settings import PortalSettings
from jaas.portal.source import LedgerSource

__all__ = ["ResponseCache", "cacheable"]

# answers that are a function of the database only (and of the read cache's files)
_EXACT = frozenset({"/api/summary", "/api/jobs", "/api/alerts"})
_FILES = "/api/files/"


def cacheable(settings: PortalSettings) -> Callable[[str], bool]:
    """Which paths' answers may be replayed: ``/api/runs`` only without a state directory
    (its manifests are files read on every request)."""
    exact = _EXACT | ({"/api/runs"} if settings.state_dir is None else set())

    def check(path: str) -> bool:
        if path in exact:
            return True
        # a file's history, not its sub-resources (replicas)
        return path.startswith(_FILES) and "/" not in path[len(_FILES) :]

    return check


@dataclass(frozen=True)
class _Answer:
    gen: int
    headers: list[tuple[bytes, bytes]]  # the route's, with the ETag
    body: bytes
    etag: bytes


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return None


def _matches(if_none_match: bytes | None, etag: bytes) -> bool:
    if if_none_match is None:
        return False
    tags = {t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")}
    return etag in tags or b"*" in tags


class ResponseCache:
    """ASGI middleware: replay cached 200 answers of cacheable GETs (see the module doc).

    Args:
        app: the FastAPI application.
        source: whose read cache's generation tags the answers.
        auth: the app's authenticator (token lookups cached on the same changes).
        settings: auth on or off, the state directory.
        size: answers kept (least recently used dropped first).
    """

    def __init__(
        self,
        app: Any,
        source: LedgerSource,
        auth: Authenticator,
        settings: PortalSettings,
        size: int = 512,
    ) -> None:
        self.app, self.source, self.auth, self.settings = app, source, auth, settings
        self.size = size
        self.cacheable = cacheable(settings)
        self._answers: OrderedDict[tuple[str, bytes], _Answer] = OrderedDict()
        self.hits = 0

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        # a cheap change token (SQLite): read it, and look tokens up (cached on it), on the
        # event loop; a round trip (PostgreSQL): in a thread
        return fn(*args) if self.source.cache.inline else await run_in_threadpool(fn, *args)

    def _allowed(self, authorization: bytes | None) -> bool:
        """Whether the route would let this credential read (False: let the route say no)."""
        try:
            who = self.auth.principal(None if authorization is None else authorization.decode())
        except (AuthError, UnicodeDecodeError):
            return False
        if who is None:
            return not self.settings.auth
        return who.allows(Scope.READ)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not self.cacheable(scope["path"]):
            await self.app(scope, receive, send)
            return
        gen = await self._call(self.source.cache.generation)
        key = (scope["path"], scope["query_string"])
        answer = self._answers.get(key)
        if (
            answer is not None
            and answer.gen == gen
            and await self._call(self._allowed, _header(scope, b"authorization"))
        ):
            self.hits += 1
            self._answers.move_to_end(key)
            await self._replay(answer, scope, send)
            return
        await self._through(key, gen, scope, receive, send)

    async def _replay(self, answer: _Answer, scope: Any, send: Any) -> None:
        if _matches(_header(scope, b"if-none-match"), answer.etag):
            await send(
                {"type": "http.response.start", "status": 304, "headers": [(b"etag", answer.etag)]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _through(
        self, key: tuple[str, bytes], gen: int, scope: Any, receive: Any, send: Any
    ) -> None:
        """Run the route; keep its answer if it is a 200 computed within one generation."""
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if message["status"] != 200:  # errors: passed on as they are, not kept
                    await send(message)
                return
            if start is None or start["status"] != 200:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            etag = _etag(body)
            headers = [*start["headers"], (b"etag", etag)]
            answer = _Answer(gen, headers, body, etag)
            if await self._call(self.source.cache.generation) == gen:  # not across a change
                self._answers[key] = answer
                while len(self._answers) > self.size:
                    self._answers.popitem(last=False)
            await self._replay(answer, scope, send)

        await self.app(scope, receive, capture)
