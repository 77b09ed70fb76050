"""Keep-up production: per-file stage chain driven by a DB ledger (truth) and Kafka (transport)."""

from jaas.kup.config import KupSettings, PipelineConfig, StageConfig, load_stages
from jaas.kup.ledger import Ledger
from jaas.kup.pipeline import Status, down, ingest, status, up
from jaas.kup.states import JobKey, JobState, RetryPolicy, State, transition

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
