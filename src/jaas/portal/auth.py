"""Who is calling: hashed API tokens in the pipeline DB, and bearer JWTs from an OIDC issuer.

API tokens are ``jaas_`` + ``secrets.token_urlsafe(32)``; only their SHA-256 is stored,
in the table ``portal_tokens`` (made by the jaas.db migrations, like every table). A
bearer value with two dots is taken as a JWT: it is checked against the issuer's JWKS
(signature, ``aud``, ``exp``, ``iss`` if configured) and its ``scope`` / ``scp`` /
``groups`` claims are mapped to a portal scope.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
import sqlalchemy as sa
from sqlalchemy import Engine, insert, select, update

from jaas.db import ensure_schema
from jaas.errors import ConfigError
from jaas.portal.cache import ViewCache
from jaas.portal.schemas import Scope, TokenOut
from jaas.portal.settings import PortalSettings

__all__ = ["AuthError", "Authenticator", "Principal", "TokenStore", "metadata"]

metadata = sa.MetaData()

# created by migration 0005 of jaas.db, like every other table of the pipeline DB
tokens_table = sa.Table(
    "portal_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked", sa.DateTime(timezone=True)),
)


class AuthError(Exception):
    """A credential is missing (status 401) or lacks the scope (status 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Principal:
    """The caller: a name for the audit and the scope it holds."""

    name: str
    scope: Scope

    def allows(self, needed: Scope) -> bool:
        return self.scope.rank >= needed.rank


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


class TokenStore:
    """API tokens of the portal in the pipeline DB (only hashes are stored).

    With a ``cache`` whose change token is read on every request (SQLite's, by default),
    a token found is remembered (hash -> principal) until the database next changes: a
    revocation is a commit, so the next request after it, in any worker process, queries
    again and is refused. With a cache checked less often (PostgreSQL) every request
    queries, so that a revocation never waits for the cache's interval.
    """

    _KNOWN_MAX = 4096  # tokens remembered at most (then forgotten all at once)

    def __init__(self, engine: Engine, cache: ViewCache | None = None) -> None:
        self.engine = engine
        self.cache = cache
        self._known: dict[str, tuple[int, Principal]] = {}
        ensure_schema(engine)  # the one upgrade path of jaas.db (migration 0005)

    def create(self, name: str, scope: Scope | str) -> tuple[str, TokenOut]:
        """A new token: its secret (shown once) and its row."""
        try:
            sc = Scope(scope)
        except ValueError:
            raise ConfigError(f"unknown scope {scope!r}; one of read, operate, admin") from None
        if not name.strip() or len(name) > 128:
            raise ConfigError("a token needs a name of 1 to 128 characters")
        secret = "jaas_" + secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            res = conn.execute(
                insert(tokens_table).values(
                    name=name, hash=_hash(secret), scope=sc.value, created=now
                )
            )
            pk = res.inserted_primary_key
            tid = int(pk[0]) if pk else 0
        return secret, TokenOut(id=tid, name=name, scope=sc, created=now)

    def list(self) -> list[TokenOut]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tokens_table).order_by(tokens_table.c.id)).all()
        return [
            TokenOut(
                id=r.id,
                name=r.name,
                scope=Scope(r.scope),
                created=_aware(r.created),
                revoked=_aware(r.revoked),
            )
            for r in rows
        ]

    def revoke(self, token_id: int) -> None:
        t = tokens_table
        with self.engine.begin() as conn:
            n = conn.execute(
                update(t)
                .where(t.c.id == token_id, t.c.revoked.is_(None))
                .values(revoked=dt.datetime.now(dt.UTC))
            ).rowcount
        if n == 0:
            raise ConfigError(f"no active token with id {token_id} (see `jaas portal token list`)")

    def lookup(self, secret: str) -> Principal | None:
        """The holder of an active token (None: unknown or revoked)."""
        digest = _hash(secret)
        cache = self.cache
        if cache is None or cache.interval > 0:
            return self._query(digest)
        gen = cache.generation()
        known = self._known.get(digest)
        if known is not None and known[0] == gen:
            return known[1]
        found = self._query(digest)
        if found is not None and cache.generation() == gen:  # not across a change
            if len(self._known) >= self._KNOWN_MAX:
                self._known.clear()
            self._known[digest] = (gen, found)
        return found

    def _query(self, digest: str) -> Principal | None:
        t = tokens_table
        q = select(t).where(t.c.hash == digest, t.c.revoked.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else Principal(f"token:{row.name}", Scope(row.scope))


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal` (or raises AuthError)."""

    def __init__(self, settings: PortalSettings, store: TokenStore) -> None:
        self.settings = settings
        self.store = store
        self._jwks_client: jwt.PyJWKClient | None = None
        self._jwks_set: jwt.PyJWKSet | None = None
        if settings.oidc_jwks_file is not None:
            try:
                self._jwks_set = jwt.PyJWKSet.from_dict(
                    json.loads(settings.oidc_jwks_file.read_text())
                )
            except (OSError, ValueError, jwt.PyJWKError) as exc:
                raise ConfigError(f"{settings.oidc_jwks_file}: not a usable JWKS: {exc}") from None
        elif settings.oidc_jwks_url is not None:
            self._jwks_client = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True)

    def principal(self, authorization: str | None) -> Principal | None:
        """The caller, or None when no credential was sent."""
        if not authorization:
            return None
        kind, _, value = authorization.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise AuthError(401, "Authorization must be 'Bearer TOKEN'")
        value = value.strip()
        if value.count(".") == 2:
            return self._jwt(value)
        found = self.store.lookup(value)
        if found is None:
            raise AuthError(401, "unknown or revoked API token")
        return found

    def _signing_key(self, token: str) -> Any:
        try:
            if self._jwks_set is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                keys = [k for k in self._jwks_set.keys if kid is None or k.key_id == kid]
                if not keys:
                    raise AuthError(401, f"JWT signed with unknown key id {kid!r}")
                return keys[0].key
            if self._jwks_client is not None:
                return self._jwks_client.get_signing_key_from_jwt(token).key
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"JWT rejected: {exc}") from None
        raise AuthError(401, "JWTs are not accepted here (no OIDC issuer configured)")

    def _jwt(self, token: str) -> Principal:
        s = self.settings
        if not s.oidc:
            raise AuthError(401, "JWTs are not accepted here (no OIDC issuer configured)")
        key = self._signing_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384"],
                audience=s.oidc_audience,
                issuer=s.oidc_issuer,
                options={"require": ["exp", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"JWT rejected: {exc}") from None
        granted: list[str] = []
        for claim in ("scope", "scp", "groups"):
            v = claims.get(claim)
            granted += v.split() if isinstance(v, str) else [str(x) for x in v or []]
        scopes = [Scope(s.oidc_scope_map[g]) for g in granted if g in s.oidc_scope_map]
        if not scopes:
            raise AuthError(403, "JWT carries no portal scope (read, operate or admin)")
        best = max(scopes, key=lambda sc: sc.rank)
        return Principal(f"oidc:{claims.get('sub', '?')}", best)
