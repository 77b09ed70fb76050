"""How a processing step (convert, reco, index) replaces, or refuses to replace, its output.

Every step names its output after its input (``run1_0000.raw`` -> ``run1_0000.rtraw.root``
in the same or a given directory), so an output of an EARLIER invocation can stand where a
new one would go. The rules, shared by the three steps:

- the output exists and is what this step would write (same input checksum, same
  settings): it is kept (idempotent rerun; ``force`` rewrites the same bytes);
- the output exists, made from the same input (name and checksum) with other settings
  (compression, calibration, software version): it is rebuilt, since that is what was
  asked for; with a catalog its row then refuses the new bytes unless the rebuild is
  declared (``rebuilt``), and the refusal keeps the old file (see below);
- the output exists and was made from another input, or is not a readable output of the
  step: the step refuses before writing anything (ConfigError naming the file, what it
  was made from and how to proceed) unless ``overwrite`` is given;
- the new output is written to a temporary file beside the target; ``check`` (e.g.
  registering it in the catalog) sees the complete result and may still refuse; only
  then is the file renamed onto the target. A refusal leaves the old file (and its
  catalog row) as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaas._io import held_writes
from jaas.errors import ConfigError

if TYPE_CHECKING:
    from jaas.formats.rtraw import StepResult

__all__ = ["StepCheck", "check_replace", "commit_step", "kept_output"]

StepCheck = Callable[["StepResult", Path], None]
"""``check(result, staged)``: called with the step's result and the path holding its bytes
(the temporary file before its rename, or the existing output when it was up to date)."""


def check_replace(
    out: Path,
    expect: Mapping[str, Any],
    found: Mapping[str, Any] | None,
    *,
    source: tuple[str, str],
    overwrite: bool,
) -> None:
    """Refuse to write ``out`` over an existing file that this step would not have written.

    Args:
        out: the output path.
        expect: the metadata the new output will carry (input name and checksum, ...).
        found: the existing output's metadata, None if it is not a readable jaas output.
        source: the keys of the input's name and checksum in the metadata.
        overwrite: replace it anyway (a deliberate rebuild).

    Raises:
        ConfigError: ``out`` exists with other content (what it holds is named).
    """
    if overwrite or not out.exists():
        return
    name, checksum = source
    if found is None:
        what = "is not a readable output of this step"
    elif (found.get(name), found.get(checksum)) != (expect.get(name), expect.get(checksum)):
        what = (
            f"was made from another input ({found.get(name)}, adler32 "
            f"{found.get(checksum)}; this one is {expect.get(name)}, adler32 "
            f"{expect.get(checksum)})"
        )
    else:  # the same input: a rebuild with other settings (or of a damaged output)
        return
    raise ConfigError(
        f"{out} already exists and {what}; nothing was written: write into another "
        "directory (-o), or replace it on purpose with --overwrite (with a catalog: "
        "--rebuilt REASON, which also replaces its catalog row)"
    )


def kept_output(
    src: Path,
    out: Path,
    expect: Mapping[str, Any],
    found: dict[str, Any] | None,
    source: tuple[str, str],
    t0: float,
    force: bool,
    overwrite: bool,
    check: StepCheck | None,
) -> StepResult | None:
    """The result of an up-to-date ``out`` (``check`` applied), or None: write it anew.

    ``found`` is the existing output's metadata, ``source`` the keys of the input's name
    and checksum in it; the rest are the step's arguments.

    Raises ConfigError (:func:`check_replace`) when ``out`` holds another input's output.
    """
    from jaas.formats.rtraw import StepResult

    if not force and found is not None and all(found.get(k) == v for k, v in expect.items()):
        res = StepResult.from_meta(src, out, found, t0, skipped=True)
        if check is not None:
            check(res, out)
        return res
    check_replace(out, expect, found, source=source, overwrite=overwrite)
    return None


def commit_step(write: Callable[[], StepResult], check: StepCheck | None) -> StepResult:
    """Run ``write`` with its final renames held back, ``check`` the result, then rename.

    When ``check`` raises, the temporary files are removed and the old output stays.
    """
    with held_writes() as held:
        res = write()
        if check is not None:
            staged = next((tmp for tmp, final in held if final == res.output), res.output)
            check(res, staged)
    return res
