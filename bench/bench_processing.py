"""Processing chain benchmark: RAW -> RTRAW conversion, index build, index -> event redirect.

Run: ``.venv/bin/python bench/bench_processing.py [--quick]``

Data: ``jaas.sim`` in hit mode (seeded; PMT count scaled down by ``--pmt-scale`` to keep
the volume manageable), ESD made from the simulation truth with ``write_esd`` (reco is
not in the loop). Measured in the same run:

- conversion MB/s (RAW bytes in) vs the RAW reader alone, a bulk uproot write of the same
  arrays, and the hardware floor (file copy + zstd of the hit bytes, single core);
- index build events/s vs reading the ESD plus writing Parquet alone;
- the redirect: full events (ESD row + hits) of 50 candidates out of the whole data set,
  via the index (fetch_events) vs a full scan of the same ESD and RTRAW files.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cramjam
import numpy as np
import pyarrow.parquet as pq
import uproot

from jaas.formats.esd import read_esd, write_esd
from jaas.formats.index import read_index
from jaas.formats.indexing import build_index
from jaas.formats.raw import RawReader, read_raw
from jaas.formats.rtraw import convert_raw, iter_rtraw, write_rtraw
from jaas.formats.schema import EventClass
from jaas.sim import simulate
from jaas.store.redirect import fetch_events

CLS = {"muon": EventClass.MUON, "muon_wp": EventClass.WP_ONLY}


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def esd_from_truth(truth_path: Path, nhit: np.ndarray) -> dict[str, np.ndarray]:
    tr = pq.read_table(truth_path).to_pandas().sort_values("entry")
    n = len(tr)
    src = tr["source"].astype(str).to_numpy()
    cls = np.array([CLS.get(s, EventClass.POINT) for s in src], np.uint8)
    rng = np.random.default_rng(n)
    e = tr["E_true"].to_numpy()
    cols = {
        "event_id": tr["event_id"].to_numpy().astype(np.uint64),
        "t": tr["t"].to_numpy(),
        "E": e * (1 + 0.03 / np.sqrt(np.maximum(e, 0.01)) * rng.standard_normal(n)),
        "x": tr["x"].to_numpy(),
        "y": tr["y"].to_numpy(),
        "z": tr["z"].to_numpy(),
        "pe": e * 1345.0,  # design light yield, physics.md (arXiv:2104.02565)
        "nhit": nhit,
        "cls": cls,
        "wp": tr["wp"].to_numpy(),
        "showering": tr["showering"].to_numpy(),
        "tracked": cls == EventClass.MUON,
        "quality": np.zeros(n, np.uint8),
    }
    for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1"):
        cols[c] = tr[c].to_numpy()
    return cols


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 min of data instead of 1 hour")
    ap.add_argument("--pmt-scale", type=float, default=0.25, help="fraction of PMTs simulated")
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--keep", help="work directory to keep (default: a temporary one)")
    ap.add_argument(
        "--redirect-only", metavar="DIR", help="only the redirect, on files kept with --keep DIR"
    )
    args = ap.parse_args()
    if args.redirect_only:
        redirect_only(Path(args.redirect_only), args.candidates)
        return
    duration = 600.0 if args.quick else 3600.0
    work = Path(args.keep or tempfile.mkdtemp(prefix="jaas-bench-proc-"))
    try:
        run(work, duration, args.pmt_scale, args.candidates)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, duration: float, pmt_scale: float, n_cand: int) -> None:
    cfg = {
        "duration_s": duration,
        "mode": "hit",
        "seed": 7,
        "block_s": 600.0,
        "chunk_s": 600.0,
        "pmt_scale": pmt_scale,
        "max_events_per_file": 10_000,
    }
    t_sim, summary = timed(lambda: simulate(cfg, work / "sim"))
    raws = sorted((work / "sim" / "raw").glob("*.raw"))
    raw_bytes = sum(p.stat().st_size for p in raws)
    n_events = int(summary.n_events)
    print(f"data: {duration / 3600:.2f} h simulated (pmt_scale {pmt_scale}), {n_events} events,")
    print(f"      {len(raws)} RAW files, {raw_bytes / 1e6:.0f} MB (sim {t_sim:.0f} s)\n")
    mb = raw_bytes / 1e6

    # --- conversion -------------------------------------------------------------------
    rt_dir = work / "rtraw"
    t_conv, results = timed(
        lambda: [
            convert_raw(
                p, rt_dir / p.name.replace(".raw", ".rtraw.root"), force=True, progress=False
            )
            for p in raws
        ]
    )
    rtraws = [r.output for r in results]
    t_read, _ = timed(lambda: [sum(len(b) for b in RawReader(p)) for p in raws])
    big = read_raw(raws[0])

    def bulk_uproot() -> None:  # one extend of the whole first file, default baskets
        write_rtraw([big], work / "bulk.root", meta={}, basket_hits=1 << 40, basket_events=1 << 40)

    t_bulk, _ = timed(bulk_uproot)
    t_ours_first, _ = timed(lambda: convert_raw(raws[0], work / "first.root", progress=False))
    t_copy, _ = timed(lambda: shutil.copyfile(raws[0], work / "copy.raw"))
    hit_bytes = b"".join(a.tobytes() for a in (big.pmt, big.charge, big.time))
    t_zstd, _ = timed(lambda: cramjam.zstd.compress(hit_bytes, level=5))
    first_mb = raws[0].stat().st_size / 1e6
    floor = t_copy + t_zstd
    rt_mb = sum(p.stat().st_size for p in rtraws) / 1e6

    # --- ESD (from truth) and index -----------------------------------------------------
    esd_paths = []
    for k, rt in enumerate(rtraws):
        name = rt.name.replace(".rtraw.root", "")
        nhit = np.asarray(uproot.open(rt)["rtraw"]["nhit"].array(library="np"))
        cols = esd_from_truth(work / "sim" / "truth" / f"{name}.truth.parquet", nhit)
        path = work / "esd" / f"{name}.esd.root"
        write_esd(cols, path, meta={"run": 1, "file_seq": k, "parent": rt.name})
        esd_paths.append(path)
    t_index, idx = timed(
        lambda: [build_index(p, file_id=k, force=True) for k, p in enumerate(esd_paths)]
    )
    t_esd_read, _ = timed(lambda: [read_esd(p) for p in esd_paths])
    tables = [read_index(r.output) for r in idx]
    t_pq_write, _ = timed(
        lambda: [pq.write_table(t, work / "x.parquet", compression="zstd") for t in tables]
    )

    # --- redirect: 50 candidates via the index vs a full scan ---------------------------
    redirect = redirect_rows(esd_paths, rtraws, [r.output for r in idx], n_cand)

    rows = [
        ("convert RAW->RTRAW (all files, zstd:5)", f"{mb / t_conv:8.1f} MB/s", ""),
        ("  RAW reader alone", f"{mb / t_read:8.1f} MB/s", f"ours/peer {t_read / t_conv:.2f}"),
        (
            "  uproot bulk write, 1 file (1 basket)",
            f"{first_mb / t_bulk:8.1f} MB/s",
            f"ours/peer {t_bulk / t_ours_first:.2f}",
        ),
        (
            "  floor: copy + zstd:5 of hits, 1 file",
            f"{first_mb / floor:8.1f} MB/s",
            f"ours/floor {floor / t_ours_first:.2f}",
        ),
        ("  RTRAW/RAW size", f"{rt_mb / mb:8.2f}", ""),
        ("index build (ESD -> Parquet)", f"{n_events / t_index:8.0f} ev/s", ""),
        (
            "  floor: read ESD + write Parquet",
            f"{n_events / (t_esd_read + t_pq_write):8.0f} ev/s",
            f"ours/floor {(t_esd_read + t_pq_write) / t_index:.2f}",
        ),
        *redirect,
    ]
    print(f"{'measure':42s} {'value':>16s}  ratio")
    for name, value, ratio in rows:
        print(f"{name:42s} {value:>16s}  {ratio}")


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s of this process, result): CPU time is the fair measure on a loaded
    machine (the files are in the page cache, the work is decoding)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def redirect_rows(
    esd_paths: list[Path], rtraws: list[Path], index_files: list[Path], n_cand: int, repeat: int = 3
) -> list[tuple[str, str, str]]:
    """Full events of ``n_cand`` candidates via the index vs a full scan, and vs the
    previous reader (one uproot ``arrays`` call per basket cluster), interleaved."""
    import jaas.formats.rtraw as rtraw_mod

    paths = {k: (str(e), str(r)) for k, (e, r) in enumerate(zip(esd_paths, rtraws, strict=True))}

    def via_index() -> Any:
        table = read_index(index_files, columns=["file_id", "entry", "E", "r", "muon"])
        df = table.to_pandas()
        pool = df[(~df["muon"]) & (df["E"] > 0.7) & (df["r"] < 17.2)]
        cand = pool.sample(n=min(n_cand, len(pool)), random_state=1)
        return fetch_events(cand, paths=paths)

    def full_scan() -> int:  # what an analysis without index does: read everything
        kept = 0
        for e, r in zip(esd_paths, rtraws, strict=True):
            esd = read_esd(e)
            assert isinstance(esd, dict)
            sel = (esd["cls"] == 0) & (esd["E"] > 0.7)
            for batch in iter_rtraw(r, step_size=20_000):
                kept += int(batch.nhits.sum() > 0)
            kept += int(sel.sum())
        return kept

    fast_read = rtraw_mod._basket_read

    def per_cluster() -> Any:  # the previous reader: uproot arrays per basket cluster
        rtraw_mod._basket_read = lambda *a: None  # type: ignore[assignment]
        try:
            return via_index()
        finally:
            rtraw_mod._basket_read = fast_read

    fetched = via_index()
    old = per_cluster()
    assert old.esd.equals(fetched.esd), "the two readers disagree"
    cand = fetched.esd[["file_id", "entry"]]
    best: dict[str, list[float]] = {}
    for _ in range(repeat):  # interleaved repetitions, best of each
        for name, fn in (
            ("index", via_index),
            ("old", per_cluster),
            ("fetch", lambda: fetch_events(cand, paths=paths)),
        ):
            w, c, _ = timed_cpu(fn)
            prev = best.get(name, [float("inf"), float("inf")])
            best[name] = [min(prev[0], w), min(prev[1], c)]
    w, c, _ = timed_cpu(full_scan)
    best["scan"] = [w, c]
    (iw, ic), (ow, oc), (fw, fc), (sw, sc) = (best[k] for k in ("index", "old", "fetch", "scan"))
    return [
        (
            f"redirect: fetch {len(cand)} full events",
            f"{fw * 1e3:8.1f} ms",
            f"CPU {fc * 1e3:.1f} ms",
        ),
        ("  index scan + select + fetch", f"{iw * 1e3:8.1f} ms", f"CPU {ic * 1e3:.1f} ms"),
        (
            "  same, previous reader (arrays/cluster)",
            f"{ow * 1e3:8.1f} ms",
            f"CPU {oc * 1e3:.1f} ms; ours/peer {oc / ic:.2f} (CPU)",
        ),
        (
            "  full scan of ESD + RTRAW",
            f"{sw * 1e3:8.1f} ms",
            f"CPU {sc * 1e3:.0f} ms; speedup wall {sw / iw:.0f}x, CPU {sc / ic:.0f}x "
            f"(fetch only: wall {sw / fw:.0f}x, CPU {sc / fc:.0f}x)",
        ),
    ]


def redirect_only(work: Path, n_cand: int) -> None:
    """The redirect part alone, on the ESD/RTRAW/index files of a run kept with --keep."""
    esd_paths = sorted((work / "esd").glob("*.esd.root"))
    rtraws = sorted((work / "rtraw").glob("*.rtraw.root"))
    index_files = sorted((work / "esd").glob("*.index.parquet"))
    if not esd_paths or len(esd_paths) != len(rtraws) or len(index_files) != len(esd_paths):
        raise SystemExit(f"{work}: no kept ESD/RTRAW/index files (run once with --keep {work})")
    n = sum(int(uproot.open(p)["rtraw"].num_entries) for p in rtraws)
    print(f"data: {len(rtraws)} kept files of {work}, {n} events\n")
    print(f"{'measure':42s} {'value':>16s}  ratio")
    for name, value, ratio in redirect_rows(esd_paths, rtraws, index_files, n_cand):
        print(f"{name:42s} {value:>16s}  {ratio}")


if __name__ == "__main__":
    main()
