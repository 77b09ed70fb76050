"""Reset and replay by selection, like retry: a dry-run preview of exactly which jobs and
downstream products change, then a confirm with the preview's plan id (409 if the
selection changed meanwhile). The ledger audits every changed job (who, when, note);
the answer lists the result per item.

- reset: ``Ledger.reset`` of each selected file at a stage (that stage and every later
  one are reset, the stage is queued again): the products of those jobs are remade;
- replay: ``Ledger.retry`` of the failed/dead jobs of a run and/or stage (bulk).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from jaas.errors import ConfigError, NotInCatalogError, PipelineError
from jaas.kup.manifest import run_of_file
from jaas.kup.states import State
from jaas.portal.app import _ERRORS, LedgerDep, OperatorDep
from jaas.portal.schemas import (
    ActionPreview,
    ActionResult,
    ErrorOut,
    ItemResult,
    JobOut,
    ReplayRequest,
    ResetRequest,
)
from jaas.portal.source import LedgerSource, plan_id

__all__ = ["replay_preview", "reset_preview", "router"]

router = APIRouter(tags=["actions"])
_CHANGED = {
    **_ERRORS,
    404: {"model": ErrorOut, "description": "no such stage, or a file without a job at it"},
    409: {"model": ErrorOut, "description": "plan changed"},
}


def _chain(source: LedgerSource) -> list[str]:
    return [s.name for s in source.ledger.config.stages]


def _products(source: LedgerSource, jobs: list[JobOut], files: set[str]) -> list[str]:
    """Output paths of the changed jobs and of their files' jobs at later stages."""
    chain = _chain(source)
    first = {f: min(chain.index(j.stage) for j in jobs if j.file == f) for f in files}
    out = {
        r["output_path"]
        for r in source.ledger.jobs_of(sorted(files))
        if r["output_path"] and r["stage"] in chain and chain.index(r["stage"]) >= first[r["file"]]
    }
    return sorted(out)


def _preview(source: LedgerSource, action: str, rows: list[dict[str, Any]]) -> ActionPreview:
    jobs = sorted(
        (JobOut.model_validate(r) for r in rows), key=lambda j: (j.file, j.stage, j.version)
    )
    products = _products(source, jobs, {j.file for j in jobs}) if jobs else []
    return ActionPreview(action=action, plan=plan_id(jobs), jobs=jobs, products=products)


def _known_stage(source: LedgerSource, name: str) -> None:
    """404 (naming the stages) for a stage the pipeline does not have."""
    try:
        source.ledger.config.stage(name)
    except ConfigError as exc:
        raise NotInCatalogError(str(exc)) from None


def reset_preview(source: LedgerSource, body: ResetRequest) -> ActionPreview:
    """The jobs a reset of ``body.files`` at ``body.stage`` changes (404: a file has none)."""
    config = source.ledger.config
    _known_stage(source, body.stage)
    chain = _chain(source)
    downstream = {s: config.stage(s).version for s in chain[chain.index(body.stage) :]}
    rows = [
        r for r in source.ledger.jobs_of(body.files) if downstream.get(r["stage"]) == r["version"]
    ]
    lacking = sorted(set(body.files) - {r["file"] for r in rows})
    if lacking:
        raise NotInCatalogError(
            f"no job at stage {body.stage!r} or after it for: {', '.join(lacking[:5])}"
        )
    return _preview(source, "reset", rows)


def _replay_rows(source: LedgerSource, body: ReplayRequest) -> list[dict[str, Any]]:
    if body.stage is not None:
        _known_stage(source, body.stage)
    chosen = set(body.states)
    return [
        r
        for r in source.ledger.jobs_of()
        if r["state"] in chosen
        and (body.stage is None or r["stage"] == body.stage)
        and (body.file is None or r["file"] == body.file)
        and (body.run is None or run_of_file(r["file"]) == body.run)
    ]


def replay_preview(source: LedgerSource, body: ReplayRequest) -> ActionPreview:
    """The failed/dead jobs a replay of ``body.run`` / ``body.stage`` re-queues."""
    return _preview(source, "replay", _replay_rows(source, body))


def _result(source: LedgerSource, preview: ActionPreview, who: str, changed: int) -> ActionResult:
    now = {
        (r["file"], r["stage"], r["version"]): r["state"]
        for r in source.ledger.jobs_of(sorted({j.file for j in preview.jobs}))
    }
    items = [
        ItemResult(
            file=j.file,
            stage=j.stage,
            version=j.version,
            from_state=j.state,
            to_state=now.get((j.file, j.stage, j.version), "gone"),
        )
        for j in preview.jobs
    ]
    return ActionResult(
        action=preview.action, plan=preview.plan, who=who, changed=changed, items=items
    )


def _check(preview: ActionPreview, plan: str) -> None:
    if plan != preview.plan:
        raise PipelineError("the selection changed since the preview: preview again")
    if not preview.jobs:
        raise PipelineError("nothing to do: the selection is empty")


@router.post("/api/actions/reset", response_model=ActionPreview | ActionResult, responses=_CHANGED)
def reset(source: LedgerDep, who: OperatorDep, body: ResetRequest) -> ActionPreview | ActionResult:
    """Without ``plan``: preview the jobs reset (the stage and every later one) and the
    products remade. With the preview's ``plan``: reset them (audited per job)."""
    preview = reset_preview(source, body)
    if body.plan is None:
        return preview
    _check(preview, body.plan)
    n = sum(
        source.ledger.reset(f, body.stage, who=who.name, note=body.note)
        for f in sorted(set(body.files))
    )
    return _result(source, preview, who.name, n)


@router.post("/api/actions/replay", response_model=ActionPreview | ActionResult, responses=_CHANGED)
def replay(
    source: LedgerDep, who: OperatorDep, body: ReplayRequest
) -> ActionPreview | ActionResult:
    """Without ``plan``: preview the failed/dead jobs of a run/stage that would be re-queued.
    With the preview's ``plan``: re-queue exactly them (audited per job)."""
    preview = replay_preview(source, body)
    if body.plan is None:
        return preview
    _check(preview, body.plan)
    n = source.ledger.retry(
        files=sorted({j.file for j in preview.jobs}),
        stage=body.stage,
        states=[State(s) for s in body.states],
        who=who.name,
        note=body.note,
    )
    return _result(source, preview, who.name, n)
