"""The RTRAW -> ESD step: read hits in batches, reconstruct, write the ESD atomically."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from jaas._io import adler32_file
from jaas._version import __version__
from jaas.detector import Detector
from jaas.errors import ConfigError, FormatError, JaasError
from jaas.formats.esd import ESD_COLUMNS, default_esd_path, write_esd
from jaas.formats.esd import TREE as ESD_TREE
from jaas.formats.outputs import StepCheck, commit_step, kept_output
from jaas.formats.rtraw import StepResult, iter_rtraw, output_meta, read_meta
from jaas.progress import progress as progress_bar
from jaas.reco.calib import (
    Calibration,
    calibration_for,
    default_calibration,
    derive_calibration,
    load_calibration,
)
from jaas.reco.pipeline import RecoConfig, reconstruct_batch
from jaas.reco.vertex import time_tables

__all__ = ["find_run_metadata", "reconstruct", "resolve_calibration"]

_SOURCE = ("parent", "parent_adler32")  # the input's name and checksum in the output's metadata


def find_run_metadata(rtraw_path: str | os.PathLike[str], run: int) -> Path | None:
    """The simulation's ``run{run:06d}.json`` beside the RTRAW file or up to two levels up."""
    here = Path(rtraw_path).resolve().parent
    for folder in (here, here.parent, here.parent.parent):
        candidate = folder / f"run{int(run):06d}.json"
        if candidate.is_file():
            return candidate
    return None


def _scales(run_meta: dict[str, Any]) -> tuple[float, float] | None:
    cfg = run_meta.get("detector") or run_meta.get("config") or {}
    if "light_scale" not in cfg and "pmt_scale" not in cfg:
        return None
    return float(cfg.get("light_scale", 1.0)), float(cfg.get("pmt_scale", 1.0))


def resolve_calibration(
    calibration: Calibration | str | os.PathLike[str] | None,
    run_meta: dict[str, Any] | None,
    where: str = "the run",
) -> Calibration:
    """Pick the calibration for a run and check that it matches the run's detector.

    An explicit calibration whose light_scale/pmt_scale differ from the run metadata's is
    refused (ConfigError). Without one: the shipped calibration when it matches the run,
    else one derived on the fly (test-scale detectors); without run metadata, the shipped one.
    """
    scales = _scales(run_meta) if run_meta is not None else None
    params = (run_meta or {}).get("detector", {}).get("params")
    if calibration is None:
        cal = calibration_for(*scales) if scales is not None else default_calibration()
        if params is not None and params != cal.detector.get("params"):
            det = Detector.from_dict(run_meta["detector"])  # type: ignore[index]
            cal = derive_calibration(det, version=None, events_per_point=40, progress=False)
        return cal
    cal = calibration if isinstance(calibration, Calibration) else load_calibration(calibration)
    if scales is not None:
        cal.check(*scales, where=where)
    if params is not None and params != cal.detector.get("params"):
        theirs = cal.detector.get("params", {})
        diff = sorted(k for k in params if params[k] != theirs.get(k))
        raise ConfigError(
            f"calibration {cal.version!r} was made for other detector parameters than "
            f"{where} (differing: {diff}); derive a matching one with jaas reco calibrate"
        )
    return cal


def reconstruct(
    rtraw_path: str | os.PathLike[str],
    esd_path: str | os.PathLike[str] | None = None,
    *,
    calibration: Calibration | str | os.PathLike[str] | None = None,
    run_meta: dict[str, Any] | str | os.PathLike[str] | None = None,
    config: RecoConfig | None = None,
    force: bool = False,
    overwrite: bool = False,
    check: StepCheck | None = None,
    progress: bool = True,
    batch_events: int = 2_000,
) -> StepResult:
    """Reconstruct an RTRAW file into an ESD file (atomic, idempotent).

    Args:
        rtraw_path: the ``.rtraw.root`` file.
        esd_path: output; default ``default_esd_path(rtraw_path)``.
        calibration: a Calibration or JSON path; None picks one (see resolve_calibration).
        run_meta: the simulation's run metadata (dict or JSON path); default: found by
            ``find_run_metadata``. Used to check the calibration against the detector.
        config: classification thresholds.
        force: rewrite even if an up-to-date output exists (same parent checksum,
            calibration and software version).
        overwrite: replace an existing ESD made from another input
            (refused otherwise, see ``jaas.formats.outputs``).
        check: called with the result and the staged file before it replaces the output
            (e.g. catalog registration); raising keeps the old output.
        progress: show a progress bar (events).
        batch_events: events per read batch (memory bound).

    Raises:
        FormatError: unreadable or corrupt RTRAW (file and entry range named); no output.
        ConfigError: calibration for another detector configuration; the output exists
            with other content (and not ``overwrite``).

    Example:
        >>> res = reconstruct("run000001_0000.rtraw.root")  # doctest: +SKIP
        >>> res.output.name                                  # doctest: +SKIP
        'run000001_0000.esd.root'
    """
    t0 = time.perf_counter()
    src = Path(rtraw_path)
    out = Path(esd_path) if esd_path is not None else default_esd_path(src)
    meta_in = read_meta(src)
    if meta_in.get("format") != "rtraw":
        raise FormatError(
            f"metadata says format {meta_in.get('format')!r}, expected 'rtraw'", path=src
        )
    run = int(meta_in.get("run", 0))
    rmeta: dict[str, Any] | None
    embedded = meta_in.get("raw_metadata")
    if isinstance(run_meta, dict):
        rmeta = run_meta
    elif run_meta is None and isinstance(embedded, dict) and "detector" in embedded:
        # the RAW header carried the detector configuration into the RTRAW metadata
        rmeta = {"run": run, "detector": embedded["detector"]}
    else:
        path = Path(run_meta) if run_meta is not None else find_run_metadata(src, run)
        rmeta = _load_json(path) if path is not None else None
    cal = resolve_calibration(calibration, rmeta, where=f"run {run} ({src.name})")
    expect = {
        "format": "esd",
        "parent": src.name,
        "parent_adler32": adler32_file(src),
        "calib_version": cal.version,
        "calib_checksum": cal.checksum,
        "software_version": __version__,
        "reco_config": dataclasses.asdict(config or RecoConfig()),
    }
    found = output_meta(out, ESD_TREE)
    if kept := kept_output(src, out, expect, found, _SOURCE, t0, force, overwrite, check):
        return kept
    detector = cal.make_detector()
    tables = time_tables(detector)
    parts: list[dict[str, np.ndarray]] = []
    done = 0
    total = meta_in.get("n_events")
    bar_kw: dict[str, Any] = {} if progress else {"disable": True}
    with progress_bar(total=total, desc=f"reco {src.name}", unit="ev", **bar_kw) as bar:
        batches = iter_rtraw(src, step_size=batch_events)
        while True:
            try:
                hits = next(batches)
            except StopIteration:
                break
            except JaasError:
                raise
            except Exception as exc:  # uproot/awkward decoding errors of a damaged file
                raise FormatError(
                    f"cannot decode entries from {done} on ({type(exc).__name__}: {exc}); "
                    "expected an intact RTRAW TTree 'rtraw'",
                    path=src,
                    event=done,
                ) from exc
            parts.append(reconstruct_batch(hits, detector, cal, config=config, tables=tables))
            done += len(hits)
            bar.update(len(hits))
    cols = {
        c: (np.concatenate([p[c] for p in parts]) if parts else np.zeros(0, dt))
        for c, dt in ESD_COLUMNS.items()
    }
    meta = {
        "run": run,
        "file_seq": meta_in.get("file_seq"),
        "start_time": meta_in.get("start_time"),
        "detector": {"light_scale": cal.light_scale, "pmt_scale": cal.pmt_scale},
        **expect,
    }
    return commit_step(
        lambda: StepResult.from_meta(src, out, write_esd(cols, out, meta=meta), t0), check
    )


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable run metadata JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data
