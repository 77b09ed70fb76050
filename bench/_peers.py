"""Peers of the IBD benchmark: the same selection in plain Python, DuckDB and ROOT RDataFrame.

Every peer implements the standard IBD selection of ``bench_ibd.py`` with the engine's
semantics (veto [t_mu, t_mu + W) after any muon; 0 < dt < dt_max; dR < dr_max; exactly one
prompt candidate) and returns the number of pairs.
"""

from __future__ import annotations

import collections
import warnings

import numpy as np

VETO_NS = 1_500_000
DT_MAX_NS = 1_000_000
DR_MAX = 1.5
R_FV = 17.2
PROMPT = (0.7, 12.0)
DELAYED = (1.9, 2.5)


def python_loop(
    t: np.ndarray, e: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, muon: np.ndarray
) -> int:
    """SNiPER/junosw style: one pass, an event buffer of recent prompt candidates."""
    tl, el, xl, yl, zl, ml = (a.tolist() for a in (t, e, x, y, z, muon))
    buf: collections.deque[tuple[int, float, float, float]] = collections.deque()
    last_mu = -(1 << 62)
    r2max = R_FV * R_FV
    dr2max = DR_MAX * DR_MAX
    pairs = 0
    for i in range(len(tl)):
        ti = tl[i]
        if ml[i]:
            last_mu = ti
        if ti - last_mu < VETO_NS:
            continue
        while buf and ti - buf[0][0] >= DT_MAX_NS:
            buf.popleft()
        ei, xi, yi, zi = el[i], xl[i], yl[i], zl[i]
        if xi * xi + yi * yi + zi * zi >= r2max:
            continue
        if DELAYED[0] < ei < DELAYED[1]:
            n = 0
            for tp, xp, yp, zp in buf:
                if tp < ti and (xi - xp) ** 2 + (yi - yp) ** 2 + (zi - zp) ** 2 < dr2max:
                    n += 1
            pairs += n == 1
        if PROMPT[0] < ei < PROMPT[1] and not ml[i]:
            buf.append((ti, xi, yi, zi))
    return pairs


def duckdb_query(cols: dict[str, np.ndarray], threads: int) -> int:
    """Window function for the veto, IEJoin range join for the pairs."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    ev = pa.table({k: cols[k] for k in ("t", "E", "x", "y", "z", "muon")})
    con.register("ev", ev)
    # materialised steps: as one CTE query DuckDB 2.0 plans the range join as a nested loop
    con.execute(
        """
    CREATE TEMP TABLE c AS SELECT * FROM (
      SELECT row_number() OVER () AS i, t, E, x, y, z, muon,
             max(CASE WHEN muon THEN t END) OVER (ORDER BY t ROWS UNBOUNDED PRECEDING) AS lm
      FROM ev
    ) WHERE (lm IS NULL OR t - lm >= CAST($veto AS BIGINT))
      AND x*x + y*y + z*z < CAST($r2 AS DOUBLE)
    """,
        {"veto": VETO_NS, "r2": R_FV**2},
    )
    con.execute(
        "CREATE TEMP TABLE p AS SELECT i, t, x, y, z FROM c WHERE E > $p0 AND E < $p1 AND NOT muon",
        {"p0": PROMPT[0], "p1": PROMPT[1]},
    )
    con.execute(
        "CREATE TEMP TABLE d AS SELECT i, t, x, y, z FROM c WHERE E > $d0 AND E < $d1",
        {"d0": DELAYED[0], "d1": DELAYED[1]},
    )
    q = """
    SELECT count(*) FROM (
      SELECT d.i FROM d JOIN p ON p.t < d.t AND p.t > d.t - CAST($dt AS BIGINT)
      WHERE (d.x-p.x)*(d.x-p.x) + (d.y-p.y)*(d.y-p.y) + (d.z-p.z)*(d.z-p.z) < CAST($dr2 AS DOUBLE)
      GROUP BY d.i HAVING count(*) = 1
    )
    """
    params = {"dt": DT_MAX_NS, "dr2": DR_MAX**2}
    row = con.execute(q, params).fetchone()
    con.close()
    return int(row[0]) if row else 0


_ROOT_HELPER = """
#include <deque>
#include <cmath>
struct JaasIbdState {
  struct P { long long t; double x, y, z; };
  std::deque<P> buf; long long last_mu = -(1LL << 62); long long pairs = 0;
  void reset() { buf.clear(); last_mu = -(1LL << 62); pairs = 0; }
  int process(long long t, float E, float x, float y, float z, bool mu) {
    if (mu) last_mu = t;
    if (t - last_mu < %(veto)d) return 0;
    while (!buf.empty() && t - buf.front().t >= %(dt)d) buf.pop_front();
    if ((double)x*x + (double)y*y + (double)z*z >= %(r2)r) return 0;
    int pair = 0;
    if (E > %(d0)r && E < %(d1)r) {
      int n = 0;
      for (auto& p : buf) {
        double dx = (double)x - p.x, dy = (double)y - p.y, dz = (double)z - p.z;
        if (p.t < t && dx*dx + dy*dy + dz*dz < %(dr2)r) ++n;
      }
      pair = (n == 1);
    }
    if (E > %(p0)r && E < %(p1)r && !mu) buf.push_back({t, x, y, z});
    pairs += pair;
    return pair;
  }
};
JaasIbdState jaas_ibd_state;
"""


def root_available() -> bool:
    try:
        with warnings.catch_warnings():  # the ROOT alpha wheel warns on import
            warnings.simplefilter("ignore")
            import ROOT  # noqa: F401
    except Exception:
        return False
    return True


def root_rdf(cols: dict[str, np.ndarray]) -> int:
    """RDataFrame over in-memory columns with a stateful C++ helper (sequential, no IMT)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ROOT

    if not hasattr(ROOT, "jaas_ibd_state"):
        ROOT.gInterpreter.Declare(
            _ROOT_HELPER
            % {
                "veto": VETO_NS,
                "dt": DT_MAX_NS,
                "r2": R_FV**2,
                "d0": DELAYED[0],
                "d1": DELAYED[1],
                "dr2": DR_MAX**2,
                "p0": PROMPT[0],
                "p1": PROMPT[1],
            }
        )
    ROOT.jaas_ibd_state.reset()
    df = ROOT.RDF.FromNumpy({k: cols[k] for k in ("t", "E", "x", "y", "z", "muon")})
    n = df.Define("pair", "jaas_ibd_state.process(t, E, x, y, z, muon)").Sum("pair")
    return round(n.GetValue())


def copy_bound(cols: dict[str, np.ndarray]) -> None:
    """Read (and write) every byte of the six columns once: the memory-bandwidth bound."""
    for k in ("t", "E", "x", "y", "z", "muon"):
        cols[k].copy()
