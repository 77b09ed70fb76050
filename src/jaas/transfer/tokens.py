"""WLCG-style bearer tokens (JWT) for storage access, issued by a configurable issuer.

A token names its audience (the site) and scopes ``storage.read:/`` or
``storage.create:/``. ``TokenCache`` hands out a cached token per (site, scope) and issues a
new one when the cached one expires within ``refresh_margin`` seconds, so a transfer never
starts with a token about to expire. ``GuardedStorage`` makes a local site check tokens
like an XRootD server with the scitokens plugin: a refused token is a permanent
``token_refused`` failure, an expired one a transient ``token_expired``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import jwt

from jaas.transfer.errors import TransferFailure
from jaas.transfer.storage import Storage, TokenSource

__all__ = ["GuardedStorage", "TokenCache", "TokenIssuer", "check_token"]


@dataclasses.dataclass(frozen=True)
class TokenIssuer:
    """Signs tokens: ``key`` is a shared secret (HS256) or a PEM private key (RS256/ES256).

    A server checking tokens with the SciTokens plugin needs ES256/RS256 and the ``key_id``
    its issuer publishes the public key under.
    """

    issuer: str
    key: str | bytes
    algorithm: str = "HS256"
    lifetime: float = 1200.0
    subject: str = "jaas-transfer"
    key_id: str | None = None

    def issue(self, audience: str, scopes: Sequence[str], now: float) -> str:
        """A token for ``audience``; a scope (or space-separated scopes) without a path: ``:/``."""
        names = [name for s in scopes for name in s.split()]
        claims = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": audience,
            "scope": " ".join(f"{s}:/" if ":" not in s else s for s in names),
            "wlcg.ver": "1.0",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + self.lifetime),
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)


class TokenCache:
    """A TokenSource: cached tokens per (site, scope), refreshed before they expire."""

    def __init__(
        self,
        issuer: TokenIssuer,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = 60.0,
    ) -> None:
        self.issuer = issuer
        self.clock = clock
        self.refresh_margin = refresh_margin
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()  # parallel transfers share one cache
        self.issued = 0

    def __call__(self, site: str, scope: str) -> str:
        with self._lock:
            now = self.clock()
            cached = self._cache.get((site, scope))
            if cached is not None and cached[1] - now > self.refresh_margin:
                return cached[0]
            token = self.issuer.issue(site, [scope], now)
            self.issued += 1
            self._cache[(site, scope)] = (token, now + self.issuer.lifetime)
            return token


def check_token(
    token: str,
    *,
    key: str | bytes,
    audience: str,
    scope: str,
    issuer: str,
    now: float,
    algorithms: Sequence[str] = ("HS256",),
) -> None:
    """Check a token like a storage server would; raise TransferFailure if refused."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=audience,
            issuer=issuer,
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidTokenError as exc:
        raise TransferFailure(f"{audience} refused the token: {exc}", "token_refused") from None
    if float(claims.get("nbf", 0)) > now + 60:
        raise TransferFailure(f"{audience} refused the token: not valid yet", "token_refused")
    if float(claims.get("exp", 0)) <= now:
        raise TransferFailure(f"{audience}: token expired", "token_expired")
    granted = str(claims.get("scope", "")).split()
    if not any(g == scope or g.startswith(f"{scope}:") for g in granted):
        raise TransferFailure(
            f"{audience} refused the token: scope {scope} not in {' '.join(granted) or 'none'}",
            "token_refused",
        )


class GuardedStorage:
    """A storage that asks ``tokens`` for every operation and checks the token first."""

    def __init__(
        self,
        inner: Storage,
        tokens: TokenSource,
        *,
        key: str | bytes,
        issuer: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.site = inner.site
        self.tokens = tokens
        self.key = key
        self.issuer = issuer
        self.clock = clock

    def _check(self, scope: str) -> None:
        token = self.tokens(self.site, scope)
        check_token(
            token,
            key=self.key,
            audience=self.site,
            scope=scope,
            issuer=self.issuer,
            now=self.clock(),
        )

    def url(self, lfn: str) -> str:
        return self.inner.url(lfn)

    def stat(self, lfn: str) -> int | None:
        self._check("storage.read")
        return self.inner.stat(lfn)

    def checksum(self, lfn: str) -> str:
        self._check("storage.read")
        return self.inner.checksum(lfn)

    def upload(self, local: Path, lfn: str) -> None:
        self._check("storage.create")
        self.inner.upload(local, lfn)

    def download(self, lfn: str, local: Path) -> None:
        self._check("storage.read")
        self.inner.download(lfn, local)

    def delete(self, lfn: str) -> None:
        self._check("storage.modify")
        self.inner.delete(lfn)
