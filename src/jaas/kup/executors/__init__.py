"""Executors that run stage attempts: one small interface, a registry by name."""

from jaas.kup.executors.base import (
    Executor,
    ExecutorStatus,
    Handle,
    JobSpec,
    JobStatus,
    available_executors,
    get_executor,
    register_executor,
)

__all__ = [
    "Executor",
    "ExecutorStatus",
    "Handle",
    "JobSpec",
    "JobStatus",
    "available_executors",
    "get_executor",
    "register_executor",
]
