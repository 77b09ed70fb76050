"""Runs: completeness per stage per run, lag behind the newest RAW, end-of-run manifest.

Files belong to a run by name (``run<N>_...``, :func:`jaas.kup.manifest.run_of_file`);
only jobs of each stage's current version count. The manifest check
(:func:`jaas.kup.manifest.run_reports`) needs the pipeline's state directory
(``settings.state_dir``); without it every run shows ``manifest: none``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from fastapi import APIRouter, Request

from jaas.kup.manifest import RunReport, run_of_file, run_reports
from jaas.kup.readmodels import job_arrivals
from jaas.portal.app import _ERRORS, LedgerDep, ReaderDep
from jaas.portal.schemas import RunOut, RunStageOut
from jaas.portal.source import LedgerSource

__all__ = ["router", "runs_view"]

router = APIRouter(tags=["runs"])


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


def _manifest(rep: RunReport | None) -> tuple[str, str | None]:
    if rep is None:
        return "none", None
    if rep.mismatched:
        bad = ", ".join(f"{n} (expected {e}, got {g})" for n, e, g in rep.mismatched[:3])
        return "mismatched", f"{len(rep.mismatched)} checksum(s) differ: {bad}"
    if rep.complete:
        return "matched", f"{rep.expected} file(s), every checksum matches"
    missing = f", {len(rep.missing)} never arrived" if rep.missing else ""
    return "incomplete", f"{rep.expected} file(s) in the manifest{missing}"


def runs_view(source: LedgerSource, state_dir: Path | None) -> list[RunOut]:
    """Every run the ledger knows, newest first."""
    stages = source.ledger.config.stages
    current = {s.name: s.version for s in stages}
    first, last = stages[0].name, stages[-1].name
    files: dict[int, dict[str, float]] = defaultdict(dict)  # run -> file -> arrival
    done: dict[tuple[int, str], set[str]] = defaultdict(set)
    newest = 0.0
    for file, stage, version, state, created in job_arrivals(source.ledger.engine):
        run = run_of_file(file)
        if run is None or current.get(stage) != version:
            continue
        if stage == first:
            files[run][file] = created.timestamp()
            newest = max(newest, created.timestamp())
        if state == "done":
            done[(run, stage)].add(file)
    reports: dict[int, RunReport] = {}
    if state_dir is not None and files:
        reports = {r.run: r for r in run_reports(state_dir, files)}
    out = []
    for run in sorted(files, reverse=True):
        arrivals = files[run]
        total = max(len(arrivals), reports[run].expected if run in reports else 0)
        per = [
            RunStageOut(
                stage=s.name,
                done=len(done[(run, s.name)]),
                total=total,
                percent=round(100.0 * len(done[(run, s.name)]) / total, 1) if total else 0.0,
            )
            for s in stages
        ]
        waiting = [t for f, t in arrivals.items() if f not in done[(run, last)]]
        behind = max(0.0, newest - min(waiting)) if waiting else 0.0
        state, detail = _manifest(reports.get(run))
        parts = ", ".join(f"{p.stage} {p.percent:g} %" for p in per)
        lag = f", {_ago(behind)} behind the newest RAW" if waiting else ", complete"
        out.append(
            RunOut(
                run=run,
                files=total,
                stages=per,
                behind_seconds=round(behind, 1),
                manifest=state,
                manifest_detail=detail,
                text=f"run {run}: {parts}{lag}; manifest {state}",
            )
        )
    return out


@router.get("/api/runs", response_model=list[RunOut], responses=_ERRORS)
def runs(source: LedgerDep, _: ReaderDep, request: Request) -> list[RunOut]:
    """Per run: done share per stage, how far behind the newest RAW, manifest matched."""
    return runs_view(source, request.app.state.settings.state_dir)
