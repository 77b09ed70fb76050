"""Stage entry points (thin adapters over the processing steps) and the attempt runner.

A stage function takes a :class:`StageContext` and returns the path of its product (or
None to pass its input on). The worker runs each attempt in a fresh process as
``python -m jaas.kup.stages ENTRY --file F --input IN --output-dir D --result R.json``;
the runner writes the outcome to ``R.json`` and exits 0 (done), 65 (deterministic
failure: bad input or configuration, not worth retrying) or 75 (transient failure).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaas._io import adler32_file, atomic_path
from jaas.errors import ConfigError, FormatError, PipelineError

__all__ = [
    "EXIT_DETERMINISTIC",
    "EXIT_TRANSIENT",
    "StageContext",
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


def ingest(ctx: StageContext) -> Path:
    """Register a RAW file: check it is readable (header + end record) and record adler32."""
    if not ctx.input.is_file():
        raise FormatError("RAW file not found in the drop area", path=ctx.input)
    from jaas.formats.raw import raw_info

    info = raw_info(ctx.input)
    ctx.meta.update({"adler32": adler32_file(ctx.input), "n_events": info.get("n_events")})
    return ctx.input


def _step(module: str, name: str) -> Callable[..., Any]:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{module}.{name} is not available in this jaas build: {exc}") from exc


def rtraw(ctx: StageContext) -> Path:
    """RAW -> RTRAW (ROOT) with :func:`jaas.formats.rtraw.convert_raw`."""
    convert = _step("jaas.formats.rtraw", "convert_raw")
    stem = ctx.input.name.removesuffix(".raw")
    res = convert(ctx.input, ctx.output_dir / f"{stem}.rtraw.root", progress=False)
    return Path(res.output)


def reco(ctx: StageContext) -> Path:
    """RTRAW -> ESD with ``jaas.reco.reconstruct_file`` (the name is a stage param ``function``)."""
    fn = _step("jaas.reco", str(ctx.params.get("function", "reconstruct_file")))
    stem = ctx.input.name.removesuffix(".rtraw.root")
    res = fn(ctx.input, ctx.output_dir / f"{stem}.esd.root")
    return Path(getattr(res, "output", res))


def index(ctx: StageContext) -> Path:
    """ESD -> index (Parquet) with :func:`jaas.formats.indexing.build_index`."""
    build = _step("jaas.formats.indexing", "build_index")
    stem = ctx.input.name.removesuffix(".esd.root")
    file_id = int(ctx.params.get("file_id", zlib.crc32(ctx.file.encode()) & 0x7FFFFFFF))
    res = build(ctx.input, ctx.output_dir / f"{stem}.index.parquet", file_id=file_id)
    return Path(res.output)


def publish(ctx: StageContext) -> Path:
    """Place the index file in the published area (param ``store_dir``, default output dir)."""
    store = Path(ctx.params.get("store_dir", ctx.output_dir))
    return copy(StageContext(ctx.file, ctx.stage, ctx.input, store, ctx.params, ctx.meta))


# ---- the runner --------------------------------------------------------------------------


def _classify(exc: BaseException) -> int:
    return EXIT_DETERMINISTIC if isinstance(exc, FormatError | ConfigError) else EXIT_TRANSIENT


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
    a = p.parse_args(argv)
    try:
        params = json.loads(a.params)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"--params is not a JSON object: {exc}") from exc
    ctx = StageContext(a.file, a.stage, Path(a.input), Path(a.output_dir), params)
    return run_entry(a.entry, ctx, None if a.result is None else Path(a.result))


if __name__ == "__main__":
    os.environ.setdefault("JAAS_PROGRESS", "0")
    sys.exit(main())
