"""A cut-flow on data (not only on simulation truth): what each cut of a query removes.

Runs the coincidence query once per step on the cached columns, adding one cut at a
time: candidates, dt window (all pairs), dR, vetoes, isolation, multiplicity mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jaas.engine.session.dataset import Dataset

__all__ = ["CutFlow", "data_cutflow"]


@dataclass(frozen=True)
class CutFlow:
    """Steps of a cut-flow: (cut, count left, fraction of the previous step)."""

    steps: list[tuple[str, int, float]]

    def counts(self) -> dict[str, int]:
        return {name: n for name, n, _ in self.steps}

    def __str__(self) -> str:
        lines = ["cut-flow (data)"]
        lines += [f"  {name:<28} {n:>10,}  {f * 100:7.2f} %" for name, n, f in self.steps]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CutFlow: {len(self.steps)} steps, {self.steps[-1][1]:,} left>"

    def _repr_html_(self) -> str:
        from jaas.notebook.render import cutflow_html

        return cutflow_html(self.steps, "cut-flow (data)")


def data_cutflow(ds: Dataset, **query: Any) -> CutFlow:
    """The cut-flow of ``ds.coincidence(**query)``: every step a real query.

    Steps: triggers, prompt and delayed candidates, pairs in the dt window (every pair),
    then dR, the vetoes, isolation and finally the requested multiplicity mode.

    Raises:
        SelectionError, ConfigError: as ``Dataset.coincidence``.
    """
    query = dict(query)
    query.pop("offtime", None)  # the accidental estimate takes no part in a cut-flow
    final_mode = query.pop("mode", "exactly_one")
    wanted: Mapping[str, Any] = {
        "dr": query.pop("dr", None),
        "vetoes": query.pop("vetoes", ()),
        "isolation": query.pop("isolation", ()),
    }
    steps: list[tuple[str, int]] = [("triggers", ds.n_events)]
    first = ds.coincidence(mode="all", **query)
    steps.append(("prompt candidates", int(first.masks["__prompt"].sum())))
    steps.append(("delayed candidates", int(first.masks["__delayed"].sum())))
    steps.append(("pairs in dt window", first.n_pairs))
    applied: dict[str, Any] = {}
    labels = {"dr": "dR cut", "vetoes": "vetoes", "isolation": "isolation"}
    for key, value in wanted.items():
        if value is None or (not isinstance(value, str | float | int) and not len(value)):
            continue
        applied[key] = value
        steps.append((labels[key], ds.coincidence(mode="all", **query, **applied).n_pairs))
    if final_mode != "all":
        steps.append(
            (f"mode {final_mode}", ds.coincidence(mode=final_mode, **query, **applied).n_pairs)
        )
    out: list[tuple[str, int, float]] = []
    for i, (name, n) in enumerate(steps):
        prev = steps[i - 1][1] if i else n
        if name == "delayed candidates":  # prompt and delayed candidates are parallel steps
            prev = steps[0][1]
        elif name == "pairs in dt window":
            prev = steps[2][1]
        out.append((name, n, n / prev if prev else 0.0))
    return CutFlow(out)
