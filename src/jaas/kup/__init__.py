"""Keep-up production: per-file stage chain driven by a DB ledger (truth) and Kafka (transport).

The names below are imported on first use (PEP 562), so that ``python -m jaas.kup.worker``
(or ``.relay``, ``.stages``, ``.warm``) does not import its own module twice and a stage
runner does not pay for the ledger and the broker client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jaas.kup.config import KupSettings, PipelineConfig, StageConfig, load_stages
    from jaas.kup.ledger import Ledger
    from jaas.kup.pipeline import Status, down, ingest, status, up
    from jaas.kup.states import JobKey, JobState, RetryPolicy, State, transition

_WHERE = {
    "KupSettings": "config",
    "PipelineConfig": "config",
    "StageConfig": "config",
    "load_stages": "config",
    "Ledger": "ledger",
    "Status": "pipeline",
    "down": "pipeline",
    "ingest": "pipeline",
    "status": "pipeline",
    "up": "pipeline",
    "JobKey": "states",
    "JobState": "states",
    "RetryPolicy": "states",
    "State": "states",
    "transition": "states",
}

__all__ = [
    "JobKey",
    "JobState",
    "KupSettings",
    "Ledger",
    "PipelineConfig",
    "RetryPolicy",
    "StageConfig",
    "State",
    "Status",
    "down",
    "ingest",
    "load_stages",
    "status",
    "transition",
    "up",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'jaas.kup' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"jaas.kup.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
