"""Batch processing steps (``convert``, ``reco``, ``index``): plan outputs, keep going.

``plan_outputs`` names every output before anything is written and refuses two inputs that
would write the same output (the second would silently replace the first). ``run_batch``
processes each input in turn: a bad file is reported on one line and the others still run;
the command then exits 1 with a count of the failures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from jaas.cli._errors import debug, describe, shown
from jaas.errors import CatalogError, ConfigError, JaasError
from jaas.progress import progress

__all__ = [
    "BatchError",
    "catalog_check",
    "catalog_url",
    "open_catalog",
    "plan_outputs",
    "register_output",
    "replace_options",
    "run_batch",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class BatchError(JaasError):
    """Some files of a batch failed (each was reported when it failed)."""


def plan_outputs(inputs: Sequence[str], namer: Callable[[str], Path]) -> list[tuple[str, Path]]:
    """(input, output) for each distinct input; refuse two inputs sharing an output.

    The same file given twice is processed once. Raises ConfigError naming both inputs
    and the output when two different files would write the same output.
    """
    plan: list[tuple[str, Path]] = []
    seen_in: set[Path] = set()
    by_out: dict[Path, str] = {}
    for path in inputs:
        real = Path(path).resolve()
        if real in seen_in:
            continue
        seen_in.add(real)
        out = namer(path)
        key = out.resolve()
        if key in by_out:
            raise ConfigError(
                f"{shown(by_out[key])} and {shown(path)} would both write "
                f"{shown(out)} (same base name); nothing was written: process them "
                "into different output directories (-o) or rename one"
            )
        by_out[key] = path
        plan.append((path, out))
    return plan


def run_batch(
    plan: Sequence[tuple[str, Path]],
    step: Callable[[str, Path], None],
    *,
    desc: str,
    outdir: str | os.PathLike[str] | None = None,
) -> None:
    """Run ``step(input, output)`` for each planned file; report each failure, go on.

    ``outdir`` (when given) is created first, so an unusable one fails once, not per file.
    A single file's error propagates as it is. Raises BatchError at the end when any file
    of several failed (exit code 1).
    """
    if outdir is not None:
        Path(outdir).mkdir(parents=True, exist_ok=True)
    if len(plan) == 1:
        with progress(total=1, desc=desc, unit="file") as bar:
            step(*plan[0])
            bar.update(1)
        return
    failed: list[str] = []
    with progress(total=len(plan), desc=desc, unit="file") as bar:
        for path, out in plan:
            try:
                step(path, out)
            except (click.exceptions.Exit, click.Abort):
                raise
            except Exception as exc:
                if debug():
                    raise
                failed.append(path)
                click.echo(f"{shown(path)}: error: {describe(exc)}", err=True)
            bar.update(1)
    if failed:
        names = ", ".join(shown(Path(p).name) for p in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise BatchError(
            f"{len(failed)} of {len(plan)} files failed ({names}{more}; see the lines above); "
            "the other outputs were written"
        )


def replace_options(fn: _F) -> _F:
    """``--overwrite`` and ``--rebuilt REASON``: replace an existing output on purpose.

    Without them, an output that exists with other content (made from another input, or
    with other settings, by an earlier run) is refused before anything is written.
    """
    fn = click.option(
        "--rebuilt",
        metavar="REASON",
        help="Replace existing outputs on purpose and, with a catalog, their catalog rows "
        "(lineage kept, REASON audited), e.g. 'new calibration'.",
    )(fn)
    return click.option(
        "--overwrite",
        is_flag=True,
        help="Replace an existing output made from another input (refused otherwise; one "
        "made from the same input with other settings is rebuilt).",
    )(fn)


def register_output(cat: Any, res: Any, staged: Path, *, rebuilt: str | None, **kw: Any) -> None:
    """A step's ``check`` with a catalog: register the staged output (and its input).

    Runs before the output replaces an older one; a refused registration (the path is
    catalogued with other bytes and the rebuild was not declared) keeps the old file and
    row, and says how to rebuild on purpose.
    """
    from jaas.store.register import register_step

    try:
        register_step(cat, res, rebuilt=rebuilt, staged=staged, **kw)
    except CatalogError as exc:
        if rebuilt is None and cat.has_file(res.output):
            raise CatalogError(
                f"{exc} (nothing was replaced: the old file and its row are kept; to "
                "rebuild it on purpose, pass --rebuilt REASON)"
            ) from exc
        raise


def catalog_check(
    cat: Any, *, rebuilt: str | None, meta_keys: Sequence[str] = (), **kw: Any
) -> Callable[[Any, Path], None] | None:
    """A step's ``check`` registering its staged output in ``cat`` (see ``register_output``),
    or None without a catalog. ``kw`` are the row's fields; ``meta_keys`` are copied from the
    step result's meta into the row's ``meta``."""
    if cat is None:
        return None

    def check(res: Any, staged: Path) -> None:
        meta = {**kw.get("meta", {}), **{k: res.meta.get(k) for k in meta_keys}}
        register_output(cat, res, staged, rebuilt=rebuilt, **{**kw, "meta": meta})

    return check


def catalog_url(value: str | None) -> str | None:
    """The subcommand's ``--catalog``, else the one given to the ``jaas`` group."""
    if value is not None:
        return value
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    url = ctx.find_root().meta.get("jaas.catalog")
    return None if url is None else str(url)


def open_catalog(value: str | None) -> Any:
    """The catalog named by ``--catalog`` (subcommand or group), or None."""
    url = catalog_url(value)
    if url is None:
        return None
    if os.path.isdir(url):
        raise ConfigError(
            f"--catalog {shown(url)!r} is a directory; give a SQLite file path "
            "(e.g. catalog.db) or a postgresql:// URL"
        )
    from jaas.store import Catalog

    return Catalog(url)
