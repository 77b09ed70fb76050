"""Transfer failures with an error class, and the retry policy of each class.

A class is *permanent* (retrying cannot help: the file is gone, the token is refused) or
*transient* (a timeout, a full disk, a corrupt copy that a re-copy fixes); each transient
class has its own exponential backoff.
"""

from __future__ import annotations

import dataclasses

from jaas.errors import TransferError

__all__ = ["ERROR_CLASSES", "ErrorClass", "TransferFailure", "backoff", "classify_message"]


@dataclasses.dataclass(frozen=True)
class ErrorClass:
    """How one kind of failure is retried: ``base * 2**(attempt-1)`` seconds, capped."""

    name: str
    permanent: bool
    base: float = 0.0
    cap: float = 3600.0


ERROR_CLASSES: dict[str, ErrorClass] = {
    c.name: c
    for c in (
        ErrorClass("not_found", True),
        ErrorClass("source_corrupt", True),
        ErrorClass("token_refused", True),
        ErrorClass("permission", True),
        ErrorClass("checksum_mismatch", False, 5.0, 600.0),
        ErrorClass("no_space", False, 300.0, 6 * 3600.0),
        ErrorClass("token_expired", False, 1.0, 60.0),
        ErrorClass("timeout", False, 30.0, 1800.0),
        ErrorClass("connection", False, 30.0, 1800.0),
        ErrorClass("link_down", False, 60.0, 1800.0),
        ErrorClass("unknown", False, 60.0, 3600.0),
    )
}


class TransferFailure(TransferError):
    """One attempt failed; ``error_class`` is a key of ERROR_CLASSES."""

    def __init__(self, message: str, error_class: str = "unknown") -> None:
        if error_class not in ERROR_CLASSES:
            raise ValueError(f"unknown error class {error_class!r}")
        self.error_class = error_class
        self.reason = message
        super().__init__(f"{error_class}: {message}")

    @property
    def permanent(self) -> bool:
        return ERROR_CLASSES[self.error_class].permanent


def backoff(error_class: str, attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based) after ``error_class``."""
    cls = ERROR_CLASSES[error_class]
    if cls.permanent:
        raise ValueError(f"{error_class} is permanent: it is not retried")
    return float(min(cls.cap, cls.base * 2 ** max(0, attempt - 1)))


_PATTERNS: tuple[tuple[str, str], ...] = (
    ("permission denied", "permission"),  # XRootD: "Unable to locate X; permission denied"
    ("no such file", "not_found"),
    ("not found", "not_found"),
    ("unable to locate", "not_found"),
    ("checksum", "checksum_mismatch"),
    ("no space", "no_space"),
    ("quota", "no_space"),
    ("token expired", "token_expired"),
    ("expired", "token_expired"),
    ("auth", "token_refused"),
    ("not authorized", "token_refused"),
    ("timed out", "timeout"),
    ("timeout", "timeout"),
    ("unable to connect", "connection"),
    ("connection refused", "connection"),
    ("connection error", "connection"),
    ("invalid address", "connection"),
    ("network is unreachable", "link_down"),
    ("no route to host", "link_down"),
    ("socket error", "connection"),
)


def classify_message(text: str) -> str:
    """The error class of a tool's error text (xrdcp, xrdfs, OS errors)."""
    low = text.lower()
    for needle, cls in _PATTERNS:
        if needle in low:
            return cls
    return "unknown"
