"""``jaas raw``: inspect, verify and salvage RAW files."""

from __future__ import annotations

import datetime as dt

import click
import numpy as np

from jaas.cli._errors import shown
from jaas.errors import FormatError
from jaas.formats.raw import RawReader, raw_info


def _when(t: int | None) -> str:
    if t is None:
        return "-"
    stamp = dt.datetime.fromtimestamp(t // 10**9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{t} ({stamp}.{t % 10**9:09d} UTC)"


@click.group()
def raw() -> None:
    """Inspect, verify and salvage RAW files."""


@raw.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def info(files: tuple[str, ...]) -> None:
    """Header, event count, time range and size of each FILE (reads header and footer)."""
    failed = False
    for path in files:
        try:
            d = raw_info(path)
        except FormatError as exc:
            click.echo(f"{shown(path)}: error: {exc}", err=True)
            failed = True
            continue
        click.echo(
            f"{shown(path)}\n"
            f"  version {d['version']}, run {d['run']}, file {d['file_seq']}, "
            f"start {_when(d['start_time'])}\n"
            f"  events {d['n_events']}, hits {d['n_hits']}, size {d['size']} bytes\n"
            f"  first  {_when(d['t_first'])}\n"
            f"  last   {_when(d['t_last'])}"
            + (f"\n  metadata {d['metadata']}" if d["metadata"] else "")
        )
    if failed:
        raise SystemExit(1)


@raw.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--salvage", is_flag=True, help="Skip damaged records and report what was lost.")
def check(files: tuple[str, ...], salvage: bool) -> None:
    """Verify every record of each FILE; exit 1 if any is damaged."""
    failed = False
    for path in files:
        try:
            with RawReader(path, salvage=salvage) as reader:
                n = sum(len(batch) for batch in reader)
                report = reader.report
        except FormatError as exc:
            click.echo(f"{shown(path)}: CORRUPT: {exc}")
            failed = True
            continue
        if report is not None and not report.ok:
            click.echo(f"{shown(path)}: DAMAGED\n{report}")
            failed = True
        else:
            click.echo(f"{shown(path)}: OK, {n} events")
    if failed:
        raise SystemExit(1)


@raw.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--events", "-n", default=5, show_default=True, help="Events to print.")
@click.option("--hits", default=5, show_default=True, help="Hits to print per event.")
def dump(file: str, events: int, hits: int) -> None:
    """Print the first events of FILE in human-readable form."""
    with RawReader(file, batch_events=max(events, 1)) as reader:
        h = reader.header
        click.echo(f"{shown(file)}: run {h.run}, file {h.file_seq}, start {_when(h.start_time)}")
        n_shown = 0
        for batch in reader:
            for i in range(min(len(batch), events - n_shown)):
                ev = batch.event(i)
                pmt, q, t = ev["pmt"], ev["charge"], ev["time"]
                assert isinstance(pmt, np.ndarray)
                assert isinstance(q, np.ndarray) and isinstance(t, np.ndarray)
                click.echo(
                    f"event {n_shown}: id {ev['event_id']}, t {_when(ev['t'])}, "  # type: ignore[arg-type]
                    f"trigger 0x{ev['trigger']:04x}, {len(pmt)} hits, "
                    f"{float(q.sum()):.1f} PE"
                )
                for j in range(min(hits, len(pmt))):
                    click.echo(f"    pmt {pmt[j]:6d}  charge {q[j]:8.3f} PE  time {t[j]:9.2f} ns")
                if len(pmt) > hits:
                    click.echo(f"    ... {len(pmt) - hits} more hits")
                n_shown += 1
            if n_shown >= events:
                break
