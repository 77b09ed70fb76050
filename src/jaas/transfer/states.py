"""The pure state machine of one (file, destination) transfer request.

``step(state, event, now=...)`` returns the next state and never touches a database or a
file, so every transition can be tested alone. Every non-terminal state carries a wait
reason ("no source", "link down ...", "waiting for hop via CNAF", "checksum_mismatch: retry
at ..."); ``done`` and ``failed`` carry none.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from jaas.errors import TransferError
from jaas.transfer.errors import ERROR_CLASSES, backoff

__all__ = ["STATES", "TERMINAL", "Event", "RequestState", "step"]

State = Literal[
    "queued", "submitted", "transferring", "verifying", "done", "failed", "retrying", "stuck"
]
STATES: tuple[str, ...] = (
    "queued",
    "submitted",
    "transferring",
    "verifying",
    "done",
    "failed",
    "retrying",
    "stuck",
)
TERMINAL = frozenset({"done", "failed"})
WAIT_POLL = 60.0  # seconds before a waiting request (no source, link down) is looked at again
ACTIVE = frozenset({"submitted", "transferring", "verifying"})


@dataclasses.dataclass(frozen=True)
class RequestState:
    state: str = "queued"
    wait_reason: str | None = "new request"
    attempts: int = 0
    next_try: float = 0.0
    route: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise TransferError(f"unknown request state {self.state!r}")
        if self.state not in TERMINAL and not self.wait_reason:
            raise TransferError(f"a {self.state} request needs a wait reason")


@dataclasses.dataclass(frozen=True)
class Event:
    """``kind`` is one of: wait, submit, start, hop, copied, verified, present, error,
    retry_due, reset. ``reason`` names why (wait) or what failed (error)."""

    kind: str
    reason: str = ""
    route: tuple[str, ...] = ()
    error_class: str = "unknown"


def step(cur: RequestState, ev: Event, *, now: float, max_attempts: int = 5) -> RequestState:
    """The state after ``ev``; raises TransferError on a transition that makes no sense."""
    s = cur.state
    r = dataclasses.replace
    if ev.kind == "present":  # destination already has the right bytes
        if s == "done":
            return cur
        return r(cur, state="done", wait_reason=None)
    if ev.kind == "reset":
        if s not in ("failed", "stuck", "done"):
            raise TransferError(f"only failed, stuck or done requests can be retried (this is {s})")
        return RequestState("queued", ev.reason or "retry requested by an operator", 0, now)
    if s in TERMINAL:
        raise TransferError(f"request is {s}: event {ev.kind!r} does not apply")
    if ev.kind == "wait":
        if s == "stuck":
            raise TransferError(f"cannot wait while {s}")
        return r(cur, state="queued", wait_reason=ev.reason or "waiting", next_try=now + WAIT_POLL)
    if ev.kind == "submit" and s == "queued":
        route = " -> ".join(ev.route)
        return r(
            cur,
            state="submitted",
            wait_reason=f"submitted on route {route}",
            route=ev.route,
            next_try=now,
        )
    if ev.kind == "start" and s == "submitted":
        return r(cur, state="transferring", wait_reason=ev.reason or "copying")
    if ev.kind == "hop" and s == "transferring":
        return r(cur, wait_reason=ev.reason or "copying the next hop", next_try=now)
    if ev.kind == "copied" and s == "transferring":
        return r(cur, state="verifying", wait_reason="verifying the checksum at the destination")
    if ev.kind == "verified" and s == "verifying":
        return r(cur, state="done", wait_reason=None)
    if ev.kind == "error" and s in ACTIVE | {"queued"}:
        attempts = cur.attempts + 1
        cls = ERROR_CLASSES.get(ev.error_class, ERROR_CLASSES["unknown"])
        if cls.permanent:
            return r(cur, state="failed", wait_reason=None, attempts=attempts)
        if attempts >= max_attempts:
            why = f"gave up after {attempts} attempts, last {cls.name}: {ev.reason}"
            return r(cur, state="stuck", wait_reason=why, attempts=attempts)
        delay = backoff(cls.name, attempts)
        why = f"{cls.name}: retry in {delay:g} s ({ev.reason})"
        return r(cur, state="retrying", wait_reason=why, attempts=attempts, next_try=now + delay)
    if ev.kind == "retry_due" and s == "retrying":
        return r(cur, state="queued", wait_reason="retry due")
    raise TransferError(f"event {ev.kind!r} does not apply to a {s} request")
