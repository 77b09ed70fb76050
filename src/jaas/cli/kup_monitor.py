"""``jaas kup monitor | alerts | metrics``: live view, alert list and Prometheus endpoint."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import click

from jaas.kup.alerts import AlertStore, evaluate_rules
from jaas.kup.config import KupSettings
from jaas.kup.lag import LagThresholds
from jaas.kup.ledger import Ledger
from jaas.kup.monitor import Snapshot, open_monitor

__all__ = ["COMMANDS", "alerts", "format_alerts", "format_snapshot", "metrics", "monitor"]

_STATE = click.argument("state_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))


def _fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def format_snapshot(snap: Snapshot, active: list[dict[str, Any]]) -> str:
    """The terminal view: broker line, one row per stage, active alerts."""
    when = dt.datetime.fromtimestamp(snap.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    b = snap.broker
    if b.up:
        head = (
            f"broker {b.bootstrap} up (cluster {b.cluster_id}, {b.brokers} broker(s), "
            f"{len(b.topics)} topic(s))"
        )
    else:
        head = f"broker {b.bootstrap or '-'} DOWN: {b.error}"
    cols = ("queued", "running", "done", "failed", "dead")
    lines = [
        f"{head}    {when}",
        "",
        f"{'stage':<10}"
        + "".join(f"{c:>9}" for c in cols)
        + f"{'files/min':>10}{'fail%':>7}{'msg/s in':>9}{'out':>7}{'lag':>7}  lag status",
    ]
    for s in snap.stages:
        counts = dict(s.counts)
        counts["queued"] = counts.get("queued", 0) + counts.get("pending", 0)
        counts["failed"] = counts.get("failed", 0) + counts.get("retrying", 0)
        fail = "-" if s.failure_rate is None else f"{s.failure_rate:.0%}"
        lag = "-" if s.lag is None else str(s.lag)
        status = "-" if s.produced is None else s.lag_status.value
        lines.append(
            f"{s.stage:<10}"
            + "".join(f"{counts.get(c, 0):>9}" for c in cols)
            + f"{s.files_per_min:>10.1f}{fail:>7}{_fmt_rate(s.produced_per_s):>9}"
            + f"{_fmt_rate(s.consumed_per_s):>7}{lag:>7}  {status}"
        )
    lines.append("")
    lines.append(format_alerts(active, title=f"alerts: {len(active)} active"))
    return "\n".join(lines)


def format_alerts(rows: list[dict[str, Any]], title: str = "alerts") -> str:
    """One line per alert: severity, rule, subject, raised (and resolved) time, message."""
    out = [title]
    for a in rows:
        raised = a["raised"].strftime("%Y-%m-%d %H:%M:%S")
        resolved = a.get("resolved")
        state = "active" if resolved is None else f"resolved {resolved.strftime('%H:%M:%S')}"
        out.append(
            f"  {a['severity'].upper():<8} {a['rule']:<14} {a['subject']:<20} "
            f"raised {raised} {state}: {a['message']}"
        )
    return "\n".join(out)


@click.command("monitor")
@_STATE
@click.option("--interval", type=float, default=2.0, show_default=True, help="Refresh every N s.")
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@click.option("--window", type=int, help="Burrow window size [default: the stages YAML's, 10].")
@click.option("--lag-warn", type=int, help="Lag (messages) from which a partition is WARN.")
@click.option("--lag-error", type=int, help="Lag (messages) from which a partition is ERR.")
def monitor(
    state_dir: Path,
    interval: float,
    once: bool,
    window: int | None,
    lag_warn: int | None,
    lag_error: int | None,
) -> None:
    """Live view of the pipeline: jobs per stage, throughput, consumer lag, alerts.

    Example: `jaas kup monitor kup/ --interval 5` (Ctrl-C to quit), or `--once` in scripts.
    """
    given: dict[str, Any] = {} if window is None else {"window": window}
    if lag_warn is not None or lag_error is not None:  # else the stages YAML's thresholds
        given["thresholds"] = LagThresholds(lag_warn, lag_error)
    mon = open_monitor(state_dir, **given)
    store = AlertStore(mon.ledger.engine)
    stop = threading.Event()
    try:
        while True:
            snap = mon.collect()
            active = store.active()
            if not active:  # no monitor process running: show what holds now
                active = [
                    {
                        "severity": a.severity.value,
                        "rule": a.rule,
                        "subject": a.subject,
                        "message": a.message,
                        "raised": dt.datetime.fromtimestamp(snap.at, dt.UTC),
                        "resolved": None,
                    }
                    for a in evaluate_rules(snap, mon.rules)
                ]
            text = format_snapshot(snap, active)
            if once:
                click.echo(text)
                return
            click.clear()
            click.echo(text)
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        mon.close()
        mon.ledger.close()


@click.command("alerts")
@_STATE
@click.option("--all", "show_all", is_flag=True, help="Also resolved alerts (most recent first).")
@click.option(
    "--hours", type=float, default=24.0, show_default=True, help="With --all: how far back."
)
@click.option("--limit", type=int, default=100, show_default=True)
def alerts(state_dir: Path, show_all: bool, hours: float, limit: int) -> None:
    """List active alerts (or, with --all, recent ones), as stored by the monitor process."""
    settings = KupSettings.load(state_dir)
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        store = AlertStore(ledger.engine)
        if show_all:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
            rows = store.recent(since, limit)
            click.echo(
                format_alerts(rows, title=f"alerts raised in the last {hours:g} h: {len(rows)}")
            )
        else:
            rows = store.active()[:limit]
            click.echo(format_alerts(rows, title=f"alerts: {len(rows)} active"))
    finally:
        ledger.close()


@click.command("metrics")
@_STATE
@click.option("--port", type=int, default=9464, show_default=True, help="0: a free port.")
@click.option("--addr", default="127.0.0.1", show_default=True, help="Address to bind.")
def metrics(state_dir: Path, port: int, addr: str) -> None:
    """Serve Prometheus metrics of the pipeline on http://ADDR:PORT/metrics (Ctrl-C to stop)."""
    from jaas.kup.metrics import serve_metrics

    mon = open_monitor(state_dir)
    srv = serve_metrics(mon, port=port, addr=addr)
    click.echo(f"serving {srv.url}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
        mon.close()
        mon.ledger.close()


COMMANDS = [monitor, alerts, metrics]
