"""Physicist-facing analysis: selections as text, vetoes, coincidences, the standard IBD.

Everything here turns short text into the pure correlation specs of ``correlate`` and
runs them on a dataset's columns (loaded once, kept in the column cache). Masks are
always evaluated on ALL triggers: vetoes and isolation see the unfiltered stream.

Example:
    >>> ds = jaas.open("runs/sim1")                                  # doctest: +SKIP
    >>> res = ds.coincidence(prompt="0.7 MeV < E < 12 MeV and r < 17.2 m",
    ...                      delayed="1.9 MeV < E < 2.5 MeV and r < 17.2 m",
    ...                      dt="1 ms", dr="1.5 m",
    ...                      vetoes=[veto("detector", "muon", "1.5 ms")])  # doctest: +SKIP
    >>> res.summary()                                               # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from jaas.engine.core.spec import (
    VETO_KINDS,
    Coincidence,
    Isolation,
    Mode,
    OffTime,
    SinceLast,
    Spec,
    Veto,
    VetoKind,
)
from jaas.engine.lang.expr import Expr, parse, parse_condition, schema_units
from jaas.engine.session.backend import (
    Backend,
    BuiltQuery,
    LocalBackend,
    local_threads,
    resolve_backend,
)
from jaas.errors import ConfigError, SelectionError
from jaas.formats.schema import INDEX_SCHEMA

if TYPE_CHECKING:
    from jaas.engine.session.dataset import Dataset
    from jaas.engine.session.results import CoincidenceResult, SelectionResult

__all__ = [
    "IBDSelection",
    "VetoRule",
    "build_query",
    "coincidence",
    "ibd",
    "prepare",
    "quantity",
    "select",
    "veto",
]

UNITS = schema_units(INDEX_SCHEMA)
_DIM_UNIT = {"time": "ns", "length": "m", "energy": "MeV"}


def quantity(value: str | float | int, dimension: Literal["time", "length", "energy"]) -> float:
    """A physical quantity in internal units (ns, m, MeV) from text such as ``"1.5 ms"``.

    A number (int or float) is taken in the internal unit; text must carry its unit
    (``"1"`` is refused: 1 ns and 1 s differ by 10^9), except a bare ``"0"``. Parsed by
    the selection grammar.

    Raises:
        SelectionError: not a constant of the requested dimension, or text without a unit.
    """
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise SelectionError(f"{value!r} is not a finite {dimension}")
        return float(value)
    if not isinstance(value, str):
        raise SelectionError(f"a {dimension} must be text or a number, got {type(value).__name__}")
    return _quantity(value, dimension)


@functools.lru_cache(maxsize=1024)
def _quantity(value: str, dimension: Literal["time", "length", "energy"]) -> float:
    """``quantity`` of a text (parsed once per text: warm queries repeat their windows)."""
    expr = parse(value, {})
    if expr.columns:
        raise SelectionError(
            f"expected a constant {dimension}, got column(s) {sorted(expr.columns)}",
            text=value,
            position=0,
        )
    if expr.dimension not in (dimension, None):
        raise SelectionError(
            f"expected a {dimension} (e.g. '1.5 {_DIM_UNIT[dimension]}'), got {expr.dimension}",
            text=value,
            position=0,
        )
    with np.errstate(all="ignore"):
        out = float(np.asarray(expr.evaluate({})).reshape(-1)[0])
    if not math.isfinite(out):
        raise SelectionError(f"{value!r} is not a finite {dimension}", text=value, position=0)
    if expr.dimension is None and out != 0:
        raise SelectionError(
            f"{value!r} has no unit: give the {dimension} with its unit, "
            f"e.g. '{value.strip()} {_DIM_UNIT[dimension]}'",
            text=value,
            position=0,
        )
    return out


_MAX_NS = 2**62  # halo arithmetic adds windows to int64 ns times: stay well inside int64


def _ns(value: str | float | int) -> int:
    ns = quantity(value, "time")
    if not math.isfinite(ns) or abs(ns) >= _MAX_NS:
        shown = value if isinstance(value, str) else f"{value} ns"
        raise SelectionError(
            f"time {shown!r} is outside the 64-bit nanosecond range (at most ~146 years)",
            text=str(value),
            position=0,
        )
    return round(ns)


@dataclass(frozen=True)
class VetoRule:
    """A veto in physicist terms: ``kind`` after events passing ``trigger`` (a condition).

    ``kind`` is "detector" (whole detector), "cylinder" (around the muon track) or
    "sphere" (around the trigger's vertex); ``radius`` for the latter two.
    """

    kind: VetoKind
    trigger: str
    window: str | float
    radius: str | float | None = None
    name: str | None = None

    def describe(self) -> str:
        where = "whole detector" if self.kind == "detector" else f"{self.kind} r<{self.radius}"
        return f"{self.name or self.kind}: {where} for {self.window} after [{self.trigger}]"


def veto(
    kind: VetoKind,
    trigger: str,
    window: str | float,
    radius: str | float | None = None,
    *,
    name: str | None = None,
) -> VetoRule:
    """Build a veto rule, e.g. ``veto("cylinder", "muon and tracked", "1.2 s", "3 m")``."""
    if kind not in VETO_KINDS:
        raise ConfigError(f"veto kind {kind!r} is not one of {', '.join(map(repr, VETO_KINDS))}")
    if kind != "detector" and radius is None:
        raise ConfigError(f"a {kind} veto needs a radius, e.g. radius='3 m'")
    return VetoRule(kind, trigger, window, radius, name)


@dataclass(frozen=True)
class IBDSelection:
    """The standard IBD selection (physics.md), every cut a parameter.

    Defaults: fiducial r < 17.2 m (S: arXiv:2204.13249); prompt 0.7-12 MeV and delayed
    1.9-2.5 MeV (V: junosw SelectionAlg); 0 < dt < 1 ms (V); dR < 1.5 m (V); exactly one
    prompt. Vetoes (physics.md: S/E, Yellow Book structure; windows and radii are tunable
    estimates): 1.5 ms whole detector after any muon; 1.2 s whole detector after untracked
    CD muons; 1.2 s in a 3 m cylinder around tracked showering muons; 1.2 s in a 1.5 m
    cylinder around other tracked muons (their 9Li/8He lies closer to the track). On the
    default simulation this gives ~92 % veto efficiency and ~1 9Li/8He pair per day,
    near the published 91.6 % and 0.8 per day.
    """

    fiducial: str = "r < 17.2 m"
    prompt: str = "0.7 MeV < E < 12 MeV"
    delayed: str = "1.9 MeV < E < 2.5 MeV"
    dt_min: str | float = 0.0
    dt_max: str | float = "1 ms"
    dr_max: str | float | None = "1.5 m"
    mode: Mode = "exactly_one"
    vetoes: tuple[VetoRule, ...] = (
        VetoRule("detector", "muon", "1.5 ms", name="muon"),
        VetoRule("detector", "cls == 1 and not tracked", "1.2 s", name="untracked"),
        VetoRule("cylinder", "cls == 1 and tracked and showering", "1.2 s", "3 m", "shower"),
        VetoRule("cylinder", "cls == 1 and tracked and not showering", "1.2 s", "1.5 m", "track"),
    )
    offtime: OffTime | None = field(default_factory=lambda: OffTime(n=200, start_ns=2_000_000_000))

    def with_changes(self, **changes: object) -> IBDSelection:
        """A copy with some cuts changed (unknown names are an error)."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"unknown IBD selection parameter(s) {sorted(unknown)}; "
                f"valid: {sorted(self.__dataclass_fields__)}"
            )
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def prompt_condition(self) -> str:
        return f"({self.prompt}) and ({self.fiducial}) and not muon"

    @property
    def delayed_condition(self) -> str:
        return f"({self.delayed}) and ({self.fiducial}) and not muon"


def dataset_units(ds: Dataset) -> dict[str, str | None]:
    """Units of the columns a selection on ``ds`` may use: the index schema's, plus any
    extra columns its files carry (a schema mapping's ``extra:``), which have no unit."""
    return {**dict.fromkeys(ds.columns), **UNITS}


def _argument(key: str) -> str:
    """The user's argument name behind an internal mask key (``__veto0`` -> ``vetoes[0]``)."""
    for prefix, arg in (("__veto", "vetoes"), ("__iso", "isolation")):
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            return f"{arg}[{key[len(prefix) :]}]"
    return f"since[{key[8:]!r}]" if key.startswith("__since_") else key.lstrip("_")


def _conditions(
    texts: Mapping[str, str],
    derived: Mapping[str, str] | None,
    units: Mapping[str, str | None] = UNITS,
) -> dict[str, Expr]:
    out: dict[str, Expr] = {}
    units_key = tuple(units.items())
    derived_key = tuple(derived.items()) if derived else ()
    for name, text in texts.items():
        try:
            if isinstance(text, str) and all(isinstance(v, str) for _, v in derived_key):
                out[name] = _parsed(text, units_key, derived_key)
            else:  # not text: parse_condition names what is wrong
                out[name] = parse_condition(text, units, derived)
        except SelectionError as err:  # name the argument that held the bad text
            err.argument = err.argument or _argument(name)
            raise
    return out


PARSED_CACHE = 512  # condition texts remembered (an Expr is immutable: safe to share)


@functools.lru_cache(maxsize=PARSED_CACHE)
def _parsed(
    text: str,
    units: tuple[tuple[str, str | None], ...],
    derived: tuple[tuple[str, str], ...],
) -> Expr:
    """``parse_condition`` remembered per (text, units, derived columns): a warm query
    (a panel release, a notebook cell rerun) repeats its conditions; errors are not
    remembered (each call raises a fresh ``SelectionError``)."""
    return parse_condition(text, dict(units), dict(derived) or None)


def select(
    ds: Dataset, condition: str, *, derived: Mapping[str, str] | None = None
) -> SelectionResult:
    """Events of ``ds`` passing ``condition`` (no correlation), with exposure and provenance."""
    from jaas.engine.session.results import SelectionResult
    from jaas.engine.session.stream import select_streaming, should_stream_columns

    ds.check()
    expr = parse_condition(condition, dataset_units(ds), derived)
    names = sorted(expr.columns | {"file_id", "entry", "E", "x", "y", "z", "r"})
    if should_stream_columns(ds, names):  # above the cache budget: file by file
        cols, mask = select_streaming(ds, expr, names)
        return SelectionResult(dataset=ds, condition=str(condition), columns=cols, mask=mask)
    cols = ds.load(names)
    mask = np.asarray(expr.evaluate(cols), dtype=bool)
    return SelectionResult(dataset=ds, condition=str(condition), columns=cols, mask=mask)


def build_query(
    *,
    prompt: str,
    delayed: str,
    dt: str | float | tuple[str | float, str | float],
    dr: str | float | None = None,
    mode: Mode = "exactly_one",
    vetoes: Sequence[VetoRule] = (),
    isolation: Sequence[tuple[str, str | float, str | float]] = (),
    offtime: OffTime | None = None,
    since: Mapping[str, str] | None = None,
    derived: Mapping[str, str] | None = None,
    units: Mapping[str, str | None] = UNITS,
) -> tuple[Spec, dict[str, Expr], dict[str, object]]:
    """Turn a coincidence query in text into the pure correlation ``Spec``, the mask
    expressions it needs (named ``__prompt``, ``__delayed``, ``__veto0`` ...) and the
    selection text recorded in provenance. Shared by the local and Dask backends."""
    dt_min, dt_max = dt if isinstance(dt, tuple) else (0.0, dt)
    texts: dict[str, str] = {"__prompt": prompt, "__delayed": delayed}
    veto_specs: list[Veto] = []
    for i, rule in enumerate(vetoes):
        key = f"__veto{i}"
        texts[key] = rule.trigger
        name = rule.name or f"{rule.kind}{i}"
        window = _ns(rule.window)
        if rule.kind == "detector":
            veto_specs.append(Veto.detector(name, key, window))
        else:
            radius = quantity(rule.radius if rule.radius is not None else 0.0, "length")
            veto_specs.append(Veto(name, rule.kind, key, window, radius))
    iso_specs = []
    for j, (cond, before, after) in enumerate(isolation):
        key = f"__iso{j}"
        texts[key] = cond
        iso_specs.append(Isolation(key, _ns(before), _ns(after)))
    since_specs = []
    for name, cond in (since or {}).items():
        key = f"__since_{name}"
        texts[key] = cond
        since_specs.append(SinceLast(name, key, at="pairs"))  # reported at the pairs only
    exprs = _conditions(texts, derived, units)
    spec = Spec(
        vetoes=tuple(veto_specs),
        coincidence=Coincidence(
            "__prompt",
            "__delayed",
            dt_max_ns=_ns(dt_max),
            dt_min_ns=_ns(dt_min),
            dr_max=None if dr is None else quantity(dr, "length"),
            mode=mode,
            isolation=tuple(iso_specs),
            offtime=offtime,
        ),
        since=tuple(since_specs),
    )
    spec.validate()
    selection: dict[str, object] = {
        "prompt": prompt,
        "delayed": delayed,
        "dt": f"{dt_min} < dt < {dt_max}",
        "dr": "none" if dr is None else f"dR < {dr}",
        "mode": mode,
        "vetoes": [r.describe() for r in vetoes],
        "isolation": [f"no [{c}] in [-{b}, +{a}]" for c, b, a in isolation],
    }
    if derived:
        selection["derived"] = dict(derived)
    return spec, exprs, selection


def prepare(spec: Spec, exprs: Mapping[str, Expr]) -> BuiltQuery:
    """The built query of ``spec`` and its masks: with every index column they read."""
    needed: set[str] = set().union(*(e.columns for e in exprs.values()))
    needed |= {"file_id", "entry", "run", "E", "x", "y", "z", "r"}
    needed |= {c for c in spec.required_columns() if not c.startswith("__")}
    return BuiltQuery(spec, dict(exprs), tuple(sorted(needed)))


def coincidence(
    ds: Dataset,
    *,
    prompt: str,
    delayed: str,
    dt: str | float | tuple[str | float, str | float],
    dr: str | float | None = None,
    mode: Mode = "exactly_one",
    vetoes: Sequence[VetoRule] = (),
    isolation: Sequence[tuple[str, str | float, str | float]] = (),
    offtime: OffTime | None = None,
    since: Mapping[str, str] | None = None,
    derived: Mapping[str, str] | None = None,
    threads: int | None = None,
    partition_events: int | None = None,
    label: str = "coincidence",
    backend: Backend | str | None = None,
    client: Any = None,
    progress: bool | None = None,
) -> CoincidenceResult:
    """Delayed-first coincidence search over a dataset (junosw semantics; see ``correlate``).

    Args:
        ds: the dataset.
        prompt, delayed: conditions selecting prompt and delayed candidates.
        dt: maximum time difference (``"1 ms"``) or ``(dt_min, dt_max)``; strict bounds.
        dr: maximum prompt-delayed distance (``"1.5 m"``), or None for no distance cut.
        mode: "exactly_one" (JUNO standard multiplicity), "nearest" or "all".
        vetoes: veto rules, evaluated on ALL triggers.
        isolation: ``(condition, before, after)``: no other such trigger in
            ``[t_prompt - before, t_delayed + after]``.
        offtime: off-time windows for the accidental background estimate.
        since: derived "time since last" columns, ``{name: condition}`` (e.g.
            ``{"t_mu": "muon"}``), reported for both events of every pair.
        derived: named derived columns usable in every condition.
        threads: threads of a local query (results are identical for any number);
            default ``JAAS_THREADS``, else one per core on large data (see
            ``jaas.engine.session.backend.local_threads``).
        partition_events: time-partition size in events (default: one partition per
            thread, or automatic).
        label: a name for the result.
        backend: where to run: ``"local"`` (default), a Dask scheduler address
            (``"tcp://HOST:8786"``), any registered scheme, or a ``Backend``; the
            result is identical (see ``jaas.engine.session.backend``).
        client: the same as a connection object (``jaas.connect(ADDR)`` or a
            ``distributed.Client``).
        progress: a local query's partition progress bar (a widget in Jupyter, a bar in
            a terminal): True or False forces it; None (default) follows ``JAAS_PROGRESS``
            or shows it in a terminal or notebook when there are several partitions.
    """
    from jaas.engine.session.results import CoincidenceResult

    spec, exprs, selection = build_query(
        prompt=prompt, delayed=delayed, dt=dt, dr=dr, mode=mode, vetoes=vetoes,
        isolation=isolation, offtime=offtime, since=since, derived=derived,
        units=dataset_units(ds),
    )  # fmt: skip
    ds.check()
    threads = local_threads(threads, ds.n_events)
    runner = resolve_backend(backend, client)
    try:
        with _progress(runner, label, progress):
            done = runner.run(
                ds, prepare(spec, exprs), threads=threads, partition_events=partition_events,
                label=label,
            )  # fmt: skip
    finally:
        if isinstance(backend, str):  # made here from an address: ours to close
            close = getattr(runner, "close", None)
            if callable(close):
                close()
    return CoincidenceResult(
        dataset=done.dataset,
        label=label,
        selection=selection,
        spec=spec,
        result=done.result,
        columns=done.columns,
        masks=done.masks,
        backend_info=done.info,
    )


def _progress(runner: Backend, label: str, enabled: bool | None) -> Any:
    """The hook giving a local backend its partition progress callback: the factory named
    by ``jaas.PROGRESS`` (the engine imports no UI layer itself)."""
    if enabled is False or not isinstance(runner, LocalBackend) or runner.on_progress:
        return contextlib.nullcontext()
    module, _, attr = getattr(importlib.import_module("jaas"), "PROGRESS", ":").partition(":")
    if not module:
        return contextlib.nullcontext()
    cm = getattr(importlib.import_module(module), attr)(label, enabled)

    @contextlib.contextmanager
    def wired() -> Any:
        with cm as on_partition:
            runner.on_progress = on_partition
            try:
                yield
            finally:
                runner.on_progress = None

    return wired()


def ibd(
    ds: Dataset,
    selection: IBDSelection | None = None,
    *,
    threads: int | None = None,
    partition_events: int | None = None,
    backend: Backend | str | None = None,
    client: Any = None,
    progress: bool | None = None,
    **changes: object,
) -> CoincidenceResult:
    """The standard IBD selection on ``ds``; keyword arguments change single cuts.

    Example:
        >>> res = jaas.ibd(ds, dr_max="1.2 m")    # doctest: +SKIP
        >>> res = ds.ibd(backend="tcp://head:8786")    # doctest: +SKIP
    """
    sel = selection or IBDSelection()
    if changes:
        sel = sel.with_changes(**changes)
    res = coincidence(
        ds,
        prompt=sel.prompt_condition,
        delayed=sel.delayed_condition,
        dt=(sel.dt_min, sel.dt_max),
        dr=sel.dr_max,
        mode=sel.mode,
        vetoes=sel.vetoes,
        offtime=sel.offtime,
        threads=threads,
        partition_events=partition_events,
        label="IBD",
        backend=backend,
        client=client,
        progress=progress,
    )
    res.ibd_selection = sel
    return res


def _real_signatures() -> None:
    """Give ``ibd()`` (every IBDSelection cut a keyword) and ``Dataset.coincidence/ibd``
    real signatures, so tab completion and Shift-Tab in Jupyter show every cut."""
    import inspect

    from jaas.engine.session.dataset import Dataset

    kw = inspect.Parameter.KEYWORD_ONLY
    base = inspect.signature(ibd)
    cuts = [
        inspect.Parameter(f.name, kw, default=getattr(IBDSelection(), f.name), annotation=f.type)
        for f in IBDSelection.__dataclass_fields__.values()
    ]
    params = [p for p in base.parameters.values() if p.kind != p.VAR_KEYWORD]
    ibd.__signature__ = base.replace(parameters=[*params, *cuts])  # type: ignore[attr-defined]
    for method, func in ((Dataset.coincidence, coincidence), (Dataset.ibd, ibd)):
        sig = inspect.signature(func)
        _ds, *rest = sig.parameters.values()
        this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        method.__signature__ = sig.replace(parameters=[this, *rest])  # type: ignore[union-attr]


_real_signatures()
