"""Efficiency per cut and rates per source of a coincidence result, against simulation truth.

Index rows and truth rows are matched by (file, entry): the simulation writes the truth
of every trigger with the file sequence number and entry of its index row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jaas._fmt import with_error
from jaas.engine.lang.expr import parse_condition
from jaas.errors import FormatError

if TYPE_CHECKING:
    from jaas.engine.session.results import CoincidenceResult

__all__ = ["PUBLISHED_EFFICIENCY", "PUBLISHED_RATES", "TruthReport", "truth_report"]

# arXiv:2204.13249 via physics.md (S): efficiency of each cut and rates after all cuts.
PUBLISHED_EFFICIENCY = {
    "fiducial volume": 0.915,
    "energy": 0.9983,
    "dt": 0.9902,
    "dR": 0.9923,
    "muon veto": 0.916,
    "total": 0.822,
}
PUBLISHED_RATES = {
    "IBD (reactor)": 47.1,
    "geo-neutrino": 1.2,
    "accidental": 0.8,
    "9Li/8He": 0.8,
}
_CATEGORY = {
    "reactor_ibd": "IBD (reactor)",
    "geo_ibd": "geo-neutrino",
    "li9he8": "9Li/8He",
    "bipo214": "BiPo",
    "bipo212": "BiPo",
}
_DAY_NS = 86_400 * 10**9


@dataclass
class TruthReport:
    """Cut flow of true reactor IBD pairs and selected pairs per true source."""

    cutflow: list[tuple[str, int, float]]  # (cut, pairs left, efficiency of this cut)
    total_efficiency: float
    rates_per_day: dict[str, tuple[float, float]]  # category -> (rate, error)
    true_ibd_per_day: float
    good_days: float
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            "efficiency per cut (true reactor IBD pairs)      ours    published",
        ]
        for name, n, eff in self.cutflow:
            pub = PUBLISHED_EFFICIENCY.get(name)
            pub_s = f"{pub * 100:7.2f} %" if pub is not None else "       -"
            lines.append(f"  {name:<22} {n:>9,}   {eff * 100:7.2f} %  {pub_s}")
        lines.append(
            f"  {'total':<22} {'':>9}   {self.total_efficiency * 100:7.2f} %  "
            f"{PUBLISHED_EFFICIENCY['total'] * 100:7.2f} %"
        )
        lines.append(f"true reactor IBD before cuts: {self.true_ibd_per_day:.1f} per day")
        lines.append("selected pairs per day of good time, by true source")
        lines.append(f"  {'':<22} {'ours':>17}   published")
        keys = list(dict.fromkeys([*PUBLISHED_RATES, *self.rates_per_day]))
        for key in keys:
            rate, err = self.rates_per_day.get(key, (0.0, 0.0))
            pub = PUBLISHED_RATES.get(key)
            pub_s = f"{pub:6.2f}" if pub is not None else "     -"
            lines.append(f"  {key:<22} {with_error(rate, err):>17}   {pub_s}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from jaas.notebook.render import truth_html

        return truth_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutflow": [{"cut": c, "pairs": n, "efficiency": e} for c, n, e in self.cutflow],
            "total_efficiency": self.total_efficiency,
            "rates_per_day": {
                k: {"rate": r, "error": e} for k, (r, e) in self.rates_per_day.items()
            },
            "true_ibd_per_day": self.true_ibd_per_day,
            "published_efficiency": PUBLISHED_EFFICIENCY,
            "published_rates": PUBLISHED_RATES,
        }


def _load_truth(paths: list[str]) -> pa.Table:
    cols = ["file_seq", "entry", "source", "role", "corr_id"]
    try:
        tables = [pq.read_table(p, columns=cols) for p in paths]
    except (OSError, pa.ArrowInvalid) as exc:
        raise FormatError(f"cannot read simulation truth: {exc}") from exc
    table = pa.concat_tables(tables)
    return table.combine_chunks()


def _keys(file_id: np.ndarray, entry: np.ndarray) -> np.ndarray:
    return (file_id.astype(np.int64) << 32) | entry.astype(np.int64)


def truth_report(res: CoincidenceResult) -> TruthReport:
    """Efficiency per cut (published order) and selected rates per true source."""
    from jaas.engine.session.analysis import UNITS, IBDSelection, quantity

    sel = res.ibd_selection or IBDSelection()
    cols = res.columns
    truth = _load_truth(res.dataset.truth_paths)
    tkey = _keys(truth.column("file_seq").to_numpy(), truth.column("entry").to_numpy())
    order = np.argsort(tkey, kind="stable")
    tkey = tkey[order]
    ikey = _keys(cols["file_id"], cols["entry"])
    pos = np.searchsorted(tkey, ikey)
    pos = np.minimum(pos, len(tkey) - 1)
    matched = tkey[pos] == ikey
    row = order[pos]  # truth row of every index row (valid where matched)
    source = np.asarray(pc.cast(truth.column("source"), pa.string()).to_numpy(zero_copy_only=False))
    role = np.asarray(pc.cast(truth.column("role"), pa.string()).to_numpy(zero_copy_only=False))
    corr = truth.column("corr_id").to_numpy()
    notes = []
    if not matched.all():
        notes.append(f"{int((~matched).sum())} index rows have no truth row")
    ev_source = np.where(matched, source[row], "")
    ev_role = np.where(matched, role[row], "")
    ev_corr = np.where(matched, corr[row], -1)

    # true reactor IBD pairs: prompt and delayed index rows sharing a corr_id
    is_p = (ev_source == "reactor_ibd") & (ev_role == "prompt")
    is_d = (ev_source == "reactor_ibd") & (ev_role == "delayed")
    ip, idl = np.flatnonzero(is_p), np.flatnonzero(is_d)
    d_by_corr = dict(zip(ev_corr[idl].tolist(), idl.tolist(), strict=True))
    pairs = [(p, d_by_corr[c]) for p, c in zip(ip.tolist(), ev_corr[ip].tolist(), strict=True)
             if c in d_by_corr]  # fmt: skip
    P = np.array([p for p, _ in pairs], np.int64)
    D = np.array([d for _, d in pairs], np.int64)
    t = cols["t"]
    seg = res.dataset.segments

    def in_segments(i: np.ndarray) -> np.ndarray:
        k = np.searchsorted(seg[:, 0], t[i], side="right") - 1
        return (k >= 0) & (t[i] < seg[np.maximum(k, 0), 1])

    fid = np.asarray(parse_condition(sel.fiducial, UNITS).evaluate(cols), bool)
    e_p = np.asarray(parse_condition(sel.prompt, UNITS).evaluate(cols), bool)
    e_d = np.asarray(parse_condition(sel.delayed, UNITS).evaluate(cols), bool)
    dt = t[D] - t[P]
    dt_lo, dt_hi = quantity(sel.dt_min, "time"), quantity(sel.dt_max, "time")
    dr = np.sqrt(sum((cols[c][D].astype(np.float64) - cols[c][P]) ** 2 for c in "xyz"))
    dr_max = np.inf if sel.dr_max is None else quantity(sel.dr_max, "length")
    vetoed = res.result.vetoed
    selected = set(zip(res.result.prompt.tolist(), res.result.delayed.tolist(), strict=True))
    in_sel = np.array([(p, d) in selected for p, d in pairs], bool)
    steps = [
        ("in good time", in_segments(P) & in_segments(D)),
        ("fiducial volume", fid[P] & fid[D]),
        ("energy", e_p[P] & e_d[D]),
        ("dt", (dt > dt_lo) & (dt < dt_hi)),
        ("dR", dr < dr_max),
        ("muon veto", ~vetoed[P] & ~vetoed[D]),
        ("multiplicity", in_sel),
    ]
    cutflow: list[tuple[str, int, float]] = []
    alive = np.ones(len(pairs), bool)
    n_start = 0
    for name, passed in steps:
        before = int(alive.sum())
        alive &= passed
        after = int(alive.sum())
        if name == "in good time":
            n_start = after
            cutflow.append((name, after, after / before if before else float("nan")))
        else:
            cutflow.append((name, after, after / before if before else float("nan")))
    total = int(alive.sum()) / n_start if n_start else float("nan")

    # selected pairs per true source
    good_days = res.exposure.good_ns / _DAY_NS
    counts: dict[str, int] = {}
    for p, d in zip(res.result.prompt.tolist(), res.result.delayed.tolist(), strict=True):
        if ev_corr[p] >= 0 and ev_corr[p] == ev_corr[d]:
            key = _CATEGORY.get(str(ev_source[d]), f"other ({ev_source[d]})")
        else:
            key = "accidental"
        counts[key] = counts.get(key, 0) + 1
    rates = {
        k: (n / good_days, np.sqrt(n) / good_days) if good_days > 0 else (np.nan, np.nan)
        for k, n in sorted(counts.items(), key=lambda kv: -kv[1])
    }
    true_ibd = int(is_p.sum()) / good_days if good_days > 0 else float("nan")
    return TruthReport(cutflow[1:], total, rates, true_ibd, good_days, notes)
