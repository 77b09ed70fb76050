"""Stage entry points (thin adapters over the processing steps) and the attempt runner.

A stage function takes a :class:`StageContext` and returns the path of its product (or
None to pass its input on). The worker runs each attempt as
``python -m jaas.kup.stages ENTRY --file F --input IN --output-dir D --result R.json``
(by default forked from a pre-imported parent with these arguments, :mod:`jaas.kup.warm`);
the runner writes the outcome to ``R.json`` and exits 0 (done), 65 (deterministic
failure: bad input or configuration, not worth retrying) or 75 (transient failure).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import shutil
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaas._io import atomic_path
from jaas.errors import CatalogError, ConfigError, FormatError, PipelineError
from jaas.settings import settings

__all__ = [
    "EXIT_DETERMINISTIC",
    "EXIT_TRANSIENT",
    "StageContext",
    "catalog_url",
    "copy",
    "index",
    "ingest",
    "load_entry",
    "noop",
    "publish",
    "reco",
    "rtraw",
    "run_entry",
]

EXIT_DETERMINISTIC = 65  # EX_DATAERR: the input or the configuration is wrong
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: try again later


@dataclass(frozen=True)
class StageContext:
    """What a stage function gets: the file key, its input, where to write, stage params."""

    file: str
    stage: str
    input: Path
    output_dir: Path
    params: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    rebuilt: str | None = None  # set after an operator reset: outputs replace their rows


def load_entry(entry: str) -> Callable[[StageContext], Any]:
    """Import ``package.module:function``; ConfigError naming the entry point if it fails."""
    module_name, _, attr = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"entry point {entry!r}: cannot import {module_name!r}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"entry point {entry!r}: {module_name!r} has no function {attr!r}")
    return fn


# ---- generic stages (also used by tests and the orchestration benchmark) ------------------


def noop(ctx: StageContext) -> Path:
    """Do nothing; pass the input on."""
    return ctx.input


def copy(ctx: StageContext) -> Path:
    """Copy the input into the output directory (atomically); idempotent."""
    out = ctx.output_dir / ctx.input.name
    with atomic_path(out) as tmp:
        shutil.copyfile(ctx.input, tmp)
    return out


# ---- the default chain -----------------------------------------------------------------
# Each stage writes its product atomically (or finds it up to date) and then registers it
# in the catalog with its parents; both are idempotent, so a redelivered message or a
# retried attempt after a crash adds no second file and no second catalog row.


def catalog_url(ctx: StageContext) -> str:
    """The catalog of a stage: param ``catalog``, else ``$JAAS_KUP_CATALOG``, else the
    pipeline's database (``$JAAS_KUP_STATE_DIR/kup.json``, set by the worker)."""
    url = ctx.params.get("catalog") or settings().kup_catalog
    if url:
        return str(url)
    state_dir = settings().kup_state_dir
    if not state_dir:
        raise ConfigError(
            f"stage {ctx.stage!r} ({ctx.input}): no catalog; give the stage param 'catalog' "
            "or run it under `jaas kup up` (which sets JAAS_KUP_STATE_DIR)"
        )
    from jaas.kup.config import KupSettings

    return KupSettings.load(state_dir).database


def _catalog(ctx: StageContext) -> Any:
    from jaas.store import Catalog

    return Catalog(catalog_url(ctx))


def _quarantine(ctx: StageContext, exc: FormatError) -> Path:
    """Mark a corrupt RAW file quarantined in the catalog and link/copy it aside."""
    area = Path(ctx.params.get("quarantine_dir") or ctx.output_dir.parent / "quarantine")
    area.mkdir(parents=True, exist_ok=True)
    dest = area / ctx.input.name
    if not dest.exists():
        with atomic_path(dest) as tmp:
            tmp.unlink()
            try:
                os.link(ctx.input, tmp)  # same file system: no copy of a large file
            except OSError:
                shutil.copyfile(ctx.input, tmp)
    run = seq = None
    with contextlib.suppress(Exception):  # the header may be readable even so
        from jaas.formats.raw import RawReader

        with RawReader(ctx.input) as reader:
            run, seq = reader.header.run, reader.header.file_seq
    with _catalog(ctx) as cat:
        rec = cat.add_file(ctx.input, kind="raw", run=run, seq=seq, meta={"quarantine": str(dest)})
        cat.set_status(rec.id, "quarantined", str(exc))
    ctx.meta.update({"catalog_id": rec.id, "quarantine": str(dest)})
    return dest


def _detector_pmts() -> int:
    from jaas.detector.params import DetectorParams  # the detector description

    return int(DetectorParams().n_pmt)


def _check_content(batch: Any, n_pmt: int, path: Path) -> None:
    """FormatError for hits no detector can record: PMT ids out of range, NaN/inf values.

    Such a file has valid CRCs (the DAQ wrote the bad values faithfully): retrying cannot
    help, so it is quarantined like a corrupt one.
    """
    import numpy as np

    def event_of(hit: int) -> int:
        i = int(np.searchsorted(batch.offsets, hit, side="right")) - 1
        return int(batch.event_id[i])

    if len(batch.pmt) and int(batch.pmt.max()) >= n_pmt:
        hit = int(np.argmax(batch.pmt >= n_pmt))
        ev = event_of(hit)
        raise FormatError(
            f"impossible content: PMT id {int(batch.pmt[hit])} out of range 0..{n_pmt - 1} "
            f"(event {ev})",
            path=path,
            event=ev,
        )
    for name in ("charge", "time"):
        values = getattr(batch, name)
        bad = ~np.isfinite(values)
        if bad.any():
            hit = int(np.argmax(bad))
            ev = event_of(hit)
            raise FormatError(
                f"impossible content: {name} {values[hit]} of a hit is not finite (event {ev})",
                path=path,
                event=ev,
            )


def ingest(ctx: StageContext) -> Path:
    """Check a RAW file (header, end record and, unless ``full_check: false``, every
    record's CRC and content: PMT ids below ``n_pmt``, finite charges and times) and
    register it in the catalog with its adler32.

    A corrupt file is quarantined (catalog status ``quarantined`` with the reason, a
    link or copy in ``data/quarantine/``) and the stage fails deterministically.
    """
    if not ctx.input.is_file():
        raise FormatError("RAW file not found in the drop area", path=ctx.input)
    from jaas.formats.raw import RawReader, raw_info

    try:
        info = raw_info(ctx.input)
        if ctx.params.get("full_check", True):
            n_pmt = int(ctx.params.get("n_pmt") or _detector_pmts())
            n = 0
            with RawReader(ctx.input) as reader:
                for batch in reader:
                    _check_content(batch, n_pmt, ctx.input)
                    n += len(batch)
            if n != info.get("n_events"):
                raise FormatError(
                    f"{n} readable events, but the end record says {info.get('n_events')}",
                    path=ctx.input,
                )
    except FormatError as exc:
        dest = _quarantine(ctx, exc)
        msg = f"quarantined (copy in {dest}): {exc.reason}"
        raise FormatError(msg, path=exc.path, offset=exc.offset, event=exc.event) from exc
    with _catalog(ctx) as cat:
        rec = cat.add_file(
            ctx.input,
            kind="raw",
            run=info["run"],
            seq=info["file_seq"],
            n_events=info["n_events"],
            t_min=info.get("t_first"),
            t_max=info.get("t_last"),
        )
    ctx.meta.update({"adler32": rec.adler32, "n_events": rec.n_events, "catalog_id": rec.id})
    return ctx.input


def _step(module: str, name: str) -> Callable[..., Any]:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{module}.{name} is not available in this jaas build: {exc}") from exc


def _register(
    ctx: StageContext,
    kind: str,
    input_kind: str,
    keep: tuple[str, ...] = (),
    meta: dict[str, Any] | None = None,
    **kw: Any,
) -> Callable[[Any, Path], None]:
    """The step's ``check``: register the staged output before it replaces the old one
    (a refusal keeps the old file and row); ``rebuilt`` after a reset replaces the row.
    The output's catalog meta is ``meta`` plus the ``keep`` keys of the step's metadata."""
    from jaas.store.register import register_step

    def check(res: Any, staged: Path) -> None:
        fields = {**(meta or {}), **{k: res.meta.get(k) for k in keep}}
        with _catalog(ctx) as cat:
            _, child = register_step(
                cat, res, kind=kind, input_kind=input_kind, rebuilt=ctx.rebuilt,
                staged=staged, meta=fields, **kw,
            )  # fmt: skip
        ctx.meta.update({"catalog_id": child.id, "n_events": res.n_events, "skipped": res.skipped})

    return check


def rtraw(ctx: StageContext) -> Path:
    """RAW -> RTRAW (ROOT) with :func:`jaas.formats.rtraw.convert_raw` (param ``compression``)."""
    convert = _step("jaas.formats.rtraw", "convert_raw")
    stem = ctx.input.name.removesuffix(".raw")
    compression = str(ctx.params.get("compression", "zstd"))
    out = ctx.output_dir / f"{stem}.rtraw.root"
    check = _register(ctx, "rtraw", "raw", keep=("compression",))
    rebuild = ctx.rebuilt is not None
    res = convert(
        ctx.input, out, compression=compression, progress=False, overwrite=rebuild, check=check
    )
    return Path(res.output)


def _calibration(ctx: StageContext) -> Any:
    """The calibration for an RTRAW file: param ``calibration`` (a JSON path), else the one
    :func:`jaas.reco.resolve_calibration` picks, cached per detector configuration in
    ``OUTPUT_DIR/calibrations`` (deriving one for a test-scale detector takes seconds)."""
    from jaas.formats.rtraw import read_meta
    from jaas.reco import resolve_calibration
    from jaas.reco.calib import load_calibration

    if ctx.params.get("calibration"):
        return load_calibration(ctx.params["calibration"])
    embedded = read_meta(ctx.input).get("raw_metadata")
    if not isinstance(embedded, dict) or "detector" not in embedded:
        return None  # let reconstruct() look for the run metadata itself
    rmeta = {"detector": embedded["detector"]}
    text = json.dumps(embedded["detector"], sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    cache = ctx.output_dir / "calibrations" / f"{digest}.json"
    if cache.is_file():
        return load_calibration(cache)
    cal = resolve_calibration(None, rmeta, where=ctx.input.name)
    cal.save(cache)
    return cal


def reco(ctx: StageContext) -> Path:
    """RTRAW -> ESD with :func:`jaas.reco.reconstruct` (param ``calibration``: a JSON path)."""
    reconstruct = _step("jaas.reco", "reconstruct")
    stem = ctx.input.name.removesuffix(".rtraw.root")
    out = ctx.output_dir / f"{stem}.esd.root"
    res = reconstruct(
        ctx.input, out, calibration=_calibration(ctx), progress=False,
        overwrite=ctx.rebuilt is not None,
        check=_register(ctx, "esd", "rtraw", keep=("calib_version",)),
    )  # fmt: skip
    return Path(res.output)


def index(ctx: StageContext) -> Path:
    """ESD -> index (Parquet) with :func:`jaas.formats.indexing.build_index`.

    The file id stored in the index rows is the ESD's catalog id (so that the redirect
    from an index row to its full event works).
    """
    build = _step("jaas.formats.indexing", "build_index")
    from jaas.formats.esd import esd_meta

    meta = esd_meta(ctx.input)
    run, seq = meta.get("run"), meta.get("file_seq")
    stem = ctx.input.name.removesuffix(".esd.root")
    fmt = str(ctx.params.get("format", "parquet"))
    suffix = "parquet" if fmt == "parquet" else "h5"
    with _catalog(ctx) as cat:
        parent = cat.add_file(ctx.input, kind="esd", run=run, seq=seq)
    out = ctx.output_dir / f"{stem}.index.{suffix}"
    extra = {"format": fmt, "file_id": parent.id}
    check = _register(ctx, "index", "esd", run=run, seq=seq, parent=parent, meta=extra)
    res = build(
        ctx.input, out, file_id=parent.id, run=run, fmt=fmt, overwrite=ctx.rebuilt is not None,
        check=check,
    )  # fmt: skip
    return Path(res.output)


def publish(ctx: StageContext) -> Path:
    """Add the (already registered) file to the live catalog dataset ``dataset`` (param,
    default ``keepup``; version param, default 1), so that
    ``jaas.open(catalog_url, dataset="keepup")`` sees everything published so far."""
    name = str(ctx.params.get("dataset", "keepup"))
    version = int(ctx.params.get("version") or 1)
    with _catalog(ctx) as cat:
        rec = cat.get_file(ctx.input)
        cat.add_to_dataset(name, [rec.id], version=version, description="keep-up production")
    ctx.meta.update({"catalog_id": rec.id, "dataset": name, "version": version})
    return ctx.input


# ---- the runner --------------------------------------------------------------------------


def _classify(exc: BaseException) -> int:
    return (
        EXIT_DETERMINISTIC
        if isinstance(exc, FormatError | ConfigError | CatalogError)
        else EXIT_TRANSIENT
    )


def run_entry(entry: str, ctx: StageContext, result: Path | None) -> int:
    """Call a stage function, write its outcome as JSON to ``result``; return the exit code."""
    outcome: dict[str, Any]
    try:
        fn = load_entry(entry)
        out = fn(ctx)
        output = str(ctx.input if out is None else out)
        outcome = {"ok": True, "output": output, "meta": ctx.meta}
        code = 0
    except Exception as exc:
        code = _classify(exc)
        traceback.print_exc()
        kind = "deterministic" if code == EXIT_DETERMINISTIC else "transient"
        outcome = {"ok": False, "reason": f"{type(exc).__name__}: {exc}", "classification": kind}
    if result is not None:
        with atomic_path(result) as tmp:
            tmp.write_text(json.dumps(outcome, default=str), encoding="utf-8")
    return code


def main(argv: list[str] | None = None) -> int:
    """Command line of the runner (what the executor launches for each attempt)."""
    p = argparse.ArgumentParser(prog="python -m jaas.kup.stages")
    p.add_argument("entry")
    p.add_argument("--file", required=True)
    p.add_argument("--stage", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--params", default="{}", help="JSON object of stage params")
    p.add_argument("--result")
    p.add_argument("--rebuilt", help="why the outputs are made again (an operator reset)")
    a = p.parse_args(argv)
    try:
        params = json.loads(a.params)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"--params is not a JSON object: {exc}") from exc
    ctx = StageContext(
        a.file, a.stage, Path(a.input), Path(a.output_dir), params, rebuilt=a.rebuilt
    )
    return run_entry(a.entry, ctx, None if a.result is None else Path(a.result))


if __name__ == "__main__":
    os.environ.setdefault("JAAS_PROGRESS", "0")
    sys.exit(main())
