"""The portal's one settings object (pydantic): database, auth, stream and bind options."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from jaas.errors import ConfigError

__all__ = ["PortalSettings", "check_bind"]


class PortalSettings(BaseModel):
    """Everything :func:`jaas.portal.app.create_app` needs.

    Attributes:
        db_url: the pipeline DB (ledger, alerts, portal tokens).
        stages: stage chain YAML (None: the default chain).
        auth: require a token on every route (reads included); mutating routes always do.
        oidc_audience / oidc_issuer: what a bearer JWT must carry.
        oidc_jwks_url / oidc_jwks_file: where the issuer's public keys are.
        oidc_scope_map: JWT scope or group -> portal scope (``read``, ``operate``, ``admin``).
        page_max: largest page size accepted by list endpoints (beyond: 422).
        stream_interval: seconds between summary polls of the SSE stream (its rate limit).
        cache_interval: seconds between two checks of the database's change token by the
            read cache (None: on every request for SQLite, whose token is free; 0.25 s
            otherwise); cached answers are never older than this behind a commit.
        heartbeat: seconds between SSE heartbeat comments.
        static_dir: the built SPA (``frontend/dist``), served after the API routes.
        state_dir: the pipeline's state directory (run manifests), if known.
    """

    model_config = ConfigDict(extra="forbid")

    db_url: str
    stages: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    auth: bool = False
    oidc_audience: str | None = None
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_file: Path | None = None
    oidc_scope_map: dict[str, str] = Field(
        default_factory=lambda: {
            "jaas.read": "read",
            "jaas.operate": "operate",
            "jaas.admin": "admin",
        }
    )
    page_max: int = Field(default=1000, ge=1)
    stream_interval: float = Field(default=1.0, gt=0)
    cache_interval: float | None = Field(default=None, ge=0, le=5)
    heartbeat: float = Field(default=15.0, gt=0)
    stream_history: int = Field(default=256, ge=1)
    static_dir: Path | None = None
    state_dir: Path | None = None

    @property
    def oidc(self) -> bool:
        """Whether bearer JWTs are accepted (a key set and an audience are configured)."""
        return self.oidc_audience is not None and (
            self.oidc_jwks_url is not None or self.oidc_jwks_file is not None
        )


def check_bind(settings: PortalSettings) -> None:
    """Refuse a non-loopback bind unless auth is on (ConfigError naming the fix)."""
    host = settings.host
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not settings.auth:
        raise ConfigError(
            f"refusing to listen on {host} without auth: pass --auth (tokens: "
            "`jaas portal token create`) or bind 127.0.0.1"
        )
