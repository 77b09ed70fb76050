"""Prometheus exporter of a keep-up pipeline: ``/metrics`` over HTTP on 127.0.0.1.

Series (all gauges; labels in braces):

- ``jaas_kup_jobs{stage,state}``: jobs per stage and state;
- ``jaas_kup_files_per_minute{stage}``: files done per minute (throughput window);
- ``jaas_kup_stage_failure_rate{stage}``: failed share of attempts in the failure window;
- ``jaas_kup_topic_messages{topic}``: messages produced to a stage topic (high watermarks);
- ``jaas_kup_topic_messages_per_second{topic,direction}``: produced / consumed rate;
- ``jaas_kup_consumer_lag{group,topic,partition}``: messages not yet committed;
- ``jaas_kup_consumer_lag_status{group,topic,partition,status}``: 1 for the Burrow status;
- ``jaas_kup_alerts_active{severity}``: active alerts;
- ``jaas_kup_broker_up``, ``jaas_kup_brokers``: broker answers (1/0), brokers in the cluster.

Each scrape collects a fresh snapshot (at most one per ``min_interval`` s), so lag
windows fill at the scrape rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jaas.kup.alerts import AlertStore, Severity
from jaas.kup.lag import LagStatus
from jaas.kup.monitor import Monitor, Snapshot
from jaas.kup.states import State

__all__ = ["MetricsServer", "PipelineCollector", "serve_metrics"]


class PipelineCollector(Collector):
    """A prometheus-client collector reading a :class:`Monitor` (and the alert table).

    Args:
        monitor: the monitor to collect from.
        min_interval: reuse the last snapshot if it is younger than this (seconds).
    """

    def __init__(self, monitor: Monitor, min_interval: float = 1.0) -> None:
        self.monitor = monitor
        self.min_interval = min_interval
        self.alerts = AlertStore(monitor.ledger.engine)
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        """The last snapshot if recent enough, a new one otherwise."""
        with self._lock:
            if self._snap is None or time.time() - self._snap.at >= self.min_interval:
                self._snap = self.monitor.collect()
            return self._snap

    def collect(self) -> Iterator[Any]:
        """Yield the metric families (called by prometheus-client on each scrape)."""
        snap = self.snapshot()
        jobs = GaugeMetricFamily(
            "jaas_kup_jobs", "Jobs per stage and state.", labels=["stage", "state"]
        )
        fpm = GaugeMetricFamily(
            "jaas_kup_files_per_minute", "Files done per minute.", labels=["stage"]
        )
        fail = GaugeMetricFamily(
            "jaas_kup_stage_failure_rate", "Failed share of recent attempts.", labels=["stage"]
        )
        for st in snap.stages:
            for state in State:
                jobs.add_metric([st.stage, state.value], st.counts.get(state.value, 0))
            fpm.add_metric([st.stage], st.files_per_min)
            if st.failure_rate is not None:
                fail.add_metric([st.stage], st.failure_rate)
        yield from (jobs, fpm, fail)

        msgs = GaugeMetricFamily(
            "jaas_kup_topic_messages", "Messages produced to a stage topic.", labels=["topic"]
        )
        rate = GaugeMetricFamily(
            "jaas_kup_topic_messages_per_second",
            "Messages per second produced to / consumed from a stage topic.",
            labels=["topic", "direction"],
        )
        lag = GaugeMetricFamily(
            "jaas_kup_consumer_lag",
            "Messages not yet committed by the group.",
            labels=["group", "topic", "partition"],
        )
        status = GaugeMetricFamily(
            "jaas_kup_consumer_lag_status",
            "Burrow status of the partition (1 for the current status).",
            labels=["group", "topic", "partition", "status"],
        )
        for st in snap.stages:
            if st.produced is not None:
                msgs.add_metric([st.topic], st.produced)
            if st.produced_per_s is not None and st.consumed_per_s is not None:
                rate.add_metric([st.topic, "produced"], st.produced_per_s)
                rate.add_metric([st.topic, "consumed"], st.consumed_per_s)
            for p in st.partitions:
                labels = [p.group, p.topic, str(p.partition)]
                lag.add_metric(labels, p.lag)
                for s in LagStatus:
                    status.add_metric([*labels, s.value], 1.0 if p.status is s else 0.0)
        yield from (msgs, rate, lag, status)

        active = GaugeMetricFamily(
            "jaas_kup_alerts_active", "Active alerts by severity.", labels=["severity"]
        )
        counts = self.alerts.counts()
        for sev in Severity:
            active.add_metric([sev.value], counts.get(sev.value, 0))
        up = GaugeMetricFamily("jaas_kup_broker_up", "1 if the broker answers.")
        up.add_metric([], 1.0 if snap.broker.up else 0.0)
        brokers = GaugeMetricFamily("jaas_kup_brokers", "Brokers in the cluster.")
        brokers.add_metric([], snap.broker.brokers)
        yield from (active, up, brokers)


class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`stop` shuts it down."""

    def __init__(self, server: Any, thread: threading.Thread, addr: str, port: int) -> None:
        self._server = server
        self._thread = thread
        self.addr = addr
        self.port = port

    @property
    def url(self) -> str:
        """``http://ADDR:PORT/metrics``."""
        return f"http://{self.addr}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


def serve_metrics(
    monitor: Monitor, port: int = 0, addr: str = "127.0.0.1", min_interval: float = 1.0
) -> MetricsServer:
    """Serve the pipeline's metrics on ``http://ADDR:PORT/metrics`` in a background thread.

    Args:
        monitor: what to collect from.
        port: TCP port (0: a free one; see ``MetricsServer.port``).
        addr: address to bind (loopback by default; put a proxy in front for others).
        min_interval: shortest time between two collections (seconds).

    Example:
        >>> srv = serve_metrics(open_monitor("kup/"))   # doctest: +SKIP
        >>> srv.url                                     # doctest: +SKIP
        'http://127.0.0.1:41234/metrics'
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(monitor, min_interval))
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread, addr, int(server.server_address[1]))
