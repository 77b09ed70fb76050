"""Operator web portal: FastAPI back end (API, SSE stream, auth) serving the built Vue SPA.

Entry point: :func:`jaas.portal.app.create_app` with a :class:`PortalSettings`.
"""

from jaas.portal.settings import PortalSettings

__all__ = ["PortalSettings"]
