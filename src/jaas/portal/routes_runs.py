"""Runs: completeness per stage per run, lag behind the newest RAW, end-of-run manifest.

Files belong to a run by name (``run<N>_...``, :func:`jaas.kup.manifest.run_of_file`);
only jobs of each stage's current version count. The counts are one SQL aggregate
(:func:`jaas.kup.readmodels.run_progress`, cached between ledger changes); the manifest check
(:func:`jaas.kup.manifest.run_reports`) needs the pipeline's state directory
(``settings.state_dir``); without it every run shows ``manifest: none``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request

from jaas.kup.manifest import RunReport, run_reports
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
    progress = source.run_progress()  # one SQL aggregate, shared by every client
    reports: dict[int, RunReport] = {}
    if state_dir is not None and progress:  # files on disk: read on every request
        reports = {r.run: r for r in run_reports(state_dir, [p.run for p in progress])}
    newest = max((p.newest.timestamp() for p in progress), default=0.0)
    out = []
    for p in progress:
        total = max(p.files, reports[p.run].expected if p.run in reports else 0)
        per = [
            RunStageOut(
                stage=s.name,
                done=p.done[s.name],
                total=total,
                percent=round(100.0 * p.done[s.name] / total, 1) if total else 0.0,
            )
            for s in stages
        ]
        waiting = p.oldest_waiting is not None
        behind = max(0.0, newest - p.oldest_waiting.timestamp()) if p.oldest_waiting else 0.0
        state, detail = _manifest(reports.get(p.run))
        parts = ", ".join(f"{r.stage} {r.percent:g} %" for r in per)
        lag = f", {_ago(behind)} behind the newest RAW" if waiting else ", complete"
        out.append(
            RunOut(
                run=p.run,
                files=total,
                stages=per,
                behind_seconds=round(behind, 1),
                manifest=state,
                manifest_detail=detail,
                text=f"run {p.run}: {parts}{lag}; manifest {state}",
            )
        )
    return out


@router.get("/api/runs", response_model=list[RunOut], responses=_ERRORS)
def runs(source: LedgerDep, _: ReaderDep, request: Request) -> list[RunOut]:
    """Per run: done share per stage, how far behind the newest RAW, manifest matched."""
    return runs_view(source, request.app.state.settings.state_dir)
