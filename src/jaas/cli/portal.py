"""``jaas portal``: serve the operator web portal on a pipeline, and manage its API tokens.

``jaas portal STATE_DIR [--port PORT] [--workers N]`` serves the API and the built SPA on
one port (N uvicorn worker processes sharing it; each has its own read cache and live
stream hub, auth tokens are read from the database by every worker);
``jaas portal token create|list|revoke STATE_DIR ...`` manages the hashed API tokens.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

import jaas
from jaas.kup.config import KupSettings

__all__ = ["portal"]

_STATE = click.argument("state_dir", type=click.Path(file_okay=False, path_type=Path))


def default_static_dir() -> Path | None:
    """The SPA built by ``make portal-ui`` in a source checkout (``frontend/dist``)."""
    dist = Path(jaas.__file__).resolve().parents[2] / "frontend" / "dist"
    return dist if (dist / "index.html").is_file() else None


class _PortalGroup(click.Group):
    """``jaas portal STATE_DIR`` runs ``serve``; ``jaas portal token ...`` the token group."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_PortalGroup)
def portal() -> None:
    """Operator web portal: `jaas portal STATE_DIR [--port PORT]` serves the dashboard
    and API of the pipeline in STATE_DIR; `jaas portal token ...` manages API tokens."""


@portal.command("serve")
@_STATE
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port (0: any free).")
@click.option("--auth/--no-auth", default=False, help="Require a token for reads too.")
@click.option(
    "--static",
    "static_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Built SPA directory (default: frontend/dist of the checkout, if built).",
)
@click.option("--oidc-audience", help="Accept bearer JWTs with this audience.")
@click.option("--oidc-issuer", help="... and this issuer.")
@click.option("--oidc-jwks-url", help="... signed by a key of this JWKS.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Worker processes (default: 2 on a machine with 2+ cores, 1 for an in-memory DB).",
)
def serve(
    state_dir: Path,
    host: str,
    port: int,
    static_dir: Path | None,
    workers: int | None,
    **oidc: Any,
) -> None:
    """Serve the API and the SPA of the pipeline in STATE_DIR."""
    import uvicorn

    from jaas.db.engine import is_sqlite, sqlite_path
    from jaas.portal.app import SETTINGS_ENV, app_from_env, create_app
    from jaas.portal.server import uvicorn_options
    from jaas.portal.settings import PortalSettings, check_bind

    kup = KupSettings.load(state_dir)
    settings = PortalSettings(
        db_url=kup.database,
        stages=None if kup.stages is None else Path(kup.stages),
        host=host,
        port=port,
        static_dir=static_dir or default_static_dir(),
        state_dir=state_dir,
        **oidc,
    )
    check_bind(settings)
    memory = is_sqlite(settings.db_url) and sqlite_path(settings.db_url) is None
    if workers is None:
        workers = 1 if memory else min(2, os.cpu_count() or 1)
    elif workers > 1 and memory:
        raise click.UsageError("--workers > 1 needs a database file or server, not :memory:")
    if workers == 1:
        app = create_app(settings)
        click.echo(f"jaas portal on http://{host}:{port}/ (API docs: /api/docs)", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", **uvicorn_options())
        return
    create_app(settings)  # fail here, once, on a bad database or SPA directory
    os.environ[SETTINGS_ENV] = settings.model_dump_json()  # every worker's settings
    click.echo(
        f"jaas portal on http://{host}:{port}/ with {workers} workers (API docs: /api/docs)",
        err=True,
    )
    target = f"{app_from_env.__module__}:{app_from_env.__name__}"
    uvicorn.run(
        target,
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        **uvicorn_options(),
    )


@portal.group("token")
def token() -> None:
    """API tokens (scopes read, operate, admin); only their hash is stored."""


def _store(state_dir: Path) -> Any:
    from sqlalchemy import create_engine

    from jaas.portal.auth import TokenStore

    return TokenStore(create_engine(KupSettings.load(state_dir).database))


@token.command("create")
@_STATE
@click.option("--name", required=True, help="Who or what uses it (shown in the audit).")
@click.option(
    "--scope", type=click.Choice(["read", "operate", "admin"]), default="read", show_default=True
)
def create_cmd(state_dir: Path, name: str, scope: str) -> None:
    """Create a token; its secret is printed once, on stdout."""
    secret, row = _store(state_dir).create(name, scope)
    click.echo(f"token {row.id} ({row.name}, {row.scope.value}) created; keep it now:", err=True)
    click.echo(secret)


@token.command("list")
@_STATE
def list_cmd(state_dir: Path) -> None:
    """List tokens (never their secret)."""
    for t in _store(state_dir).list():
        state = f"revoked {t.revoked:%Y-%m-%d %H:%M}" if t.revoked else "active"
        click.echo(f"{t.id:4d}  {t.name:24s} {t.scope.value:8s} {state}")


@token.command("revoke")
@_STATE
@click.argument("token_id", type=int)
def revoke_cmd(state_dir: Path, token_id: int) -> None:
    """Revoke token TOKEN_ID (see `jaas portal token list`)."""
    _store(state_dir).revoke(token_id)
    click.echo(f"token {token_id} revoked")
