"""The cuts of an interactive coincidence selection, as plain data (no widgets).

``Cuts`` holds every cut the selection panel shows; it builds the keyword arguments of
``Dataset.coincidence``, the equivalent code, a fast estimate from a loose pair sample,
and saves/loads itself by name in a JSON file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaas.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["WINDOW_COLUMNS", "Cuts", "load_selection", "save_selection", "saved_selections"]

MODES = ("exactly_one", "nearest", "all")
# the pair columns the windows of ``Cuts.window_mask`` read
WINDOW_COLUMNS = ("prompt_E", "prompt_r", "delayed_E", "delayed_r", "dt_us", "dr_m")
OFFTIME_WINDOWS = 100


@dataclass(frozen=True)
class Cuts:
    """Every cut of a prompt/delayed coincidence, in display units."""

    prompt_e: tuple[float, float] = (0.7, 12.0)  # MeV
    delayed_e: tuple[float, float] = (1.9, 2.5)  # MeV
    r_max: float = 17.2  # m, fiducial radius (both events)
    dt_us: tuple[float, float] = (0.0, 1000.0)
    dr_max: float = 1.5  # m; 0 means no dR cut
    muon_veto_ms: float = 1.5  # whole detector after any muon; 0: none
    shower_veto_s: float = 1.2  # whole detector after showering CD muons; 0: none
    mode: str = "exactly_one"
    extra: str = ""  # a condition both events must pass, e.g. "quality > 0.5"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")

    def _condition(self, energy: tuple[float, float]) -> str:
        text = f"{energy[0]:g} MeV < E < {energy[1]:g} MeV and r < {self.r_max:g} m and not muon"
        return f"{text} and ({self.extra})" if self.extra.strip() else text

    def query(self) -> dict[str, Any]:
        """Keyword arguments of ``Dataset.coincidence`` for these cuts."""
        from jaas.engine.core.spec import OffTime
        from jaas.engine.session.analysis import veto

        vetoes = []
        if self.muon_veto_ms > 0:
            vetoes.append(veto("detector", "muon", f"{self.muon_veto_ms:g} ms", name="muon"))
        if self.shower_veto_s > 0:
            trigger = "cls == 1 and showering"
            vetoes.append(veto("detector", trigger, f"{self.shower_veto_s:g} s", name="shower"))
        return {
            "prompt": self._condition(self.prompt_e),
            "delayed": self._condition(self.delayed_e),
            "dt": (f"{self.dt_us[0]:g} us", f"{self.dt_us[1]:g} us"),
            "dr": f"{self.dr_max:g} m" if self.dr_max > 0 else None,
            "mode": self.mode,
            "vetoes": vetoes,
            "offtime": OffTime(n=OFFTIME_WINDOWS, start_ns=2_000_000_000),
            "since": {"t_mu": "muon"},
        }

    def code(self, dataset: str = "ds") -> str:
        """The equivalent ``ds.coincidence(...)`` call, ready to paste into a script."""
        q = self.query()
        vetoes = ", ".join(
            f"jaas.veto({v.kind!r}, {v.trigger!r}, {v.window!r}, name={v.name!r})"
            for v in q["vetoes"]
        )
        return (
            f"{dataset}.coincidence(\n"
            f"    prompt={q['prompt']!r},\n"
            f"    delayed={q['delayed']!r},\n"
            f"    dt={q['dt']!r},\n"
            f"    dr={q['dr']!r},\n"
            f"    mode={q['mode']!r},\n"
            f"    vetoes=[{vetoes}],\n"
            f"    offtime=jaas.OffTime(n={OFFTIME_WINDOWS}, start_ns=2_000_000_000),\n"
            f"    since={q['since']!r},\n"
            ")"
        )

    def loose(self) -> Cuts:
        """The widest cuts the panel offers, except ``extra``: a superset of every pair."""
        return replace(
            self, prompt_e=(0.0, 100.0), delayed_e=(0.0, 100.0), r_max=100.0,
            dt_us=(0.0, DT_MAX_US), dr_max=0.0, muon_veto_ms=0.0, shower_veto_s=0.0, mode="all",
        )  # fmt: skip

    def window_mask(self, pairs: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """Pairs of a loose sample (a DataFrame, or its ``WINDOW_COLUMNS`` as arrays)
        inside these energy, radius, dt and dR windows."""
        col = {c: np.asarray(pairs[c]) for c in WINDOW_COLUMNS}
        m = (col["dt_us"] > self.dt_us[0]) & (col["dt_us"] < self.dt_us[1])
        for role, (lo, hi) in (("prompt", self.prompt_e), ("delayed", self.delayed_e)):
            e = col[f"{role}_E"]
            m &= (e > lo) & (e < hi) & (col[f"{role}_r"] < self.r_max)
        if self.dr_max > 0:
            m &= col["dr_m"] < self.dr_max
        return m

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cuts:
        """Cuts from ``to_dict`` output; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown cut(s) {sorted(unknown)}; valid: {sorted(names)}")
        values = dict(data)
        for key in ("prompt_e", "delayed_e", "dt_us"):
            if key in values:
                lo, hi = values[key]
                values[key] = (float(lo), float(hi))
        return cls(**values)


DT_MAX_US = 2000.0


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a JSON selection file ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON selection file (expected an object)")
    return data


def save_selection(path: str | os.PathLike[str], name: str, cuts: Cuts) -> None:
    """Store ``cuts`` under ``name`` in the JSON file ``path`` (written atomically)."""
    if not name.strip():
        raise ConfigError("a selection needs a name")
    file = Path(path)
    data = _read(file)
    data[name] = cuts.to_dict()
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(file)


def load_selection(path: str | os.PathLike[str], name: str) -> Cuts:
    """The cuts saved under ``name`` in ``path``."""
    data = _read(Path(path))
    if name not in data:
        known = ", ".join(sorted(data)) or "none"
        raise ConfigError(f"no selection named {name!r} in {path} (saved: {known})")
    return Cuts.from_dict(data[name])


def saved_selections(path: str | os.PathLike[str]) -> list[str]:
    """Names of the selections saved in ``path``."""
    return sorted(_read(Path(path)))
