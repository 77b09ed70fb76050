"""Text renderers of keep-up state for the terminal: pipeline status and run completeness."""

from __future__ import annotations

from jaas.kup.manifest import RunReport
from jaas.kup.pipeline import ResetPlan, Status

__all__ = ["format_reset_plan", "format_runs", "format_status"]

_ORDER = ("pending", "queued", "running", "retrying", "done", "failed", "dead")


def format_status(st: Status) -> str:
    """Human-readable table of :func:`status`."""
    lines = [f"broker: {st.bootstrap or '-'}"]
    for name, alive in st.processes.items():
        n = st.restarts.get(name, 0)
        extra = f"  (restarted {n} time{'s' if n != 1 else ''})" if n else ""
        lines.append(f"  {name:<20} {'up' if alive else 'DOWN'}{extra}")
    lines.append("")
    lines.append(f"{'stage':<12}" + "".join(f"{s:>10}" for s in _ORDER))
    for stage, by_state in st.counts.items():
        lines.append(f"{stage:<12}" + "".join(f"{by_state.get(s, 0):>10}" for s in _ORDER))
    if st.failures:
        lines.append("")
        lines.append("failures:")
        for f in st.failures:
            lines.append(
                f"  {f['stage']:<10} {f['file']:<32} {f['state']:<9} "
                f"attempts {f['attempts']}: {f['reason']}"
            )
    if st.runs:
        lines += ["", "runs (end-of-run manifests):", format_runs(st.runs)]
    return "\n".join(lines)


def format_runs(reports: list[RunReport]) -> str:
    """Table of run completeness: expected, then seen/done per stage, then problems."""
    if not reports:
        return ""
    stages = list(reports[0].seen)
    lines = [f"{'run':<8}{'files':>6}  " + "".join(f"{s + ' seen/done':>22}" for s in stages)]
    for r in reports:
        cells = "".join(f"{f'{r.seen[s]}/{r.done[s]}':>22}" for s in stages)
        verdict = "complete" if r.complete else "INCOMPLETE"
        lines.append(f"{r.run:<8}{r.expected:>6}  {cells}  {verdict}")
        for name in r.missing:
            lines.append(f"  run {r.run}: missing file {name} (in the manifest, never ingested)")
        for name, want, got in r.mismatched:
            lines.append(
                f"  run {r.run}: checksum differs for {name}: manifest {want}, ingested {got}"
            )
    return "\n".join(lines)


def format_reset_plan(plan: ResetPlan) -> str:
    """Lines an operator reads before confirming a reset."""
    lines = [f"reset {plan.file} from stage {plan.stage!r}:"]
    for j in plan.jobs:
        lines.append(
            f"  {j['stage']:<10} {j['state']:<9} attempts {j['attempts']}"
            + (f"  (last reason: {j['reason']})" if j["reason"] else "")
        )
    lines += [f"  delete product {p}" for p in plan.delete]
    lines += [f"  keep {p} ({why})" for p, why in plan.keep]
    return "\n".join(lines)
