"""Print the portal's OpenAPI document: ``python -m jaas.portal.openapi > openapi.json``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from jaas.portal.app import create_app
from jaas.portal.settings import PortalSettings

__all__ = ["document"]


def document() -> dict[str, object]:
    """The OpenAPI document (built on a throw-away SQLite DB)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(PortalSettings(db_url=f"sqlite:///{Path(tmp) / 'kup.db'}"))
        doc = app.openapi()
        app.state.source.ledger.close()
        return doc


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=1)
    sys.stdout.write("\n")
