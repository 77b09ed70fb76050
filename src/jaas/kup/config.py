"""Stage chain configuration (YAML, validated by pydantic with file:line: key errors)."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jaas._yaml import Located, line_of, load_located
from jaas.errors import ConfigError
from jaas.kup.alert_rules import MonitorConfig
from jaas.kup.states import RetryPolicy

__all__ = [
    "DEFAULT_STAGES",
    "Backoff",
    "KupSettings",
    "PipelineConfig",
    "Resources",
    "StageConfig",
    "default_stages_path",
    "load_stages",
]

DEFAULT_STAGES = "default_stages.yaml"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]+$")
_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(MB|GB|MiB|GiB|M|G)?\s*$", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    """What one attempt of a stage needs: cores and memory (MB, or a string like ``"2GB"``)."""

    cpus: int = Field(default=1, ge=1)
    memory_mb: int = Field(default=1024, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        if isinstance(value, dict) and "memory" in value:
            value = dict(value)
            raw = value.pop("memory")
            m = _MEMORY.match(str(raw))
            if not m:
                raise ValueError(f"memory {raw!r} is not a size like 512MB or 2GB")
            number, unit = float(m.group(1)), (m.group(2) or "MB").upper()
            value["memory_mb"] = int(number * (1024 if unit.startswith("G") else 1))
        return value


class Backoff(_Strict):
    """Exponential retry backoff in seconds: base * factor**(attempt-1), capped at max."""

    base: float = Field(default=10.0, ge=0)
    factor: float = Field(default=2.0, ge=1)
    max: float = Field(default=600.0, ge=0)


class StageConfig(_Strict):
    """One stage: reads files named in messages on ``input``, announces results on ``output``.

    Exactly one of ``entry`` (``module:function`` called with a
    :class:`jaas.kup.stages.StageContext`) or ``command`` (an argument list, never a shell
    string; placeholders ``{python}``, ``{input}``, ``{output_dir}``, ``{file}``) is given.
    """

    name: str
    input: str
    output: str | None = None
    entry: str | None = None
    command: list[str] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    resources: Resources = Resources()
    timeout: float = Field(default=3600.0, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff: Backoff = Backoff()
    version: str = "1"
    deterministic_exit_codes: list[int] = Field(default_factory=lambda: [65])

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"stage name {v!r} must start with a letter and use [A-Za-z0-9_-]")
        return v

    @field_validator("input", "output")
    @classmethod
    def _topic(cls, v: str | None) -> str | None:
        if v is not None and not _TOPIC.match(v):
            raise ValueError(f"topic {v!r} may only use letters, digits, '.', '_' and '-'")
        return v

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: str | None) -> str | None:
        if v is not None and not _ENTRY.match(v):
            raise ValueError(f"entry point {v!r} must look like 'package.module:function'")
        return v

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError("command must be a list of arguments, not a shell string")
        if isinstance(v, list) and not v:
            raise ValueError("command must not be empty")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    @model_validator(mode="after")
    def _one_action(self) -> StageConfig:
        if (self.entry is None) == (self.command is None):
            raise ValueError("give exactly one of 'entry' (module:function) or 'command'")
        return self

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retry limit and backoff of this stage for the state machine."""
        b = self.backoff
        return RetryPolicy(self.retries, b.base, b.factor, b.max)


class PipelineConfig(_Strict):
    """The whole chain: stages in order; the first one receives ingested files."""

    stages: list[StageConfig] = Field(min_length=1)
    source: str | None = None
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)  # lag window, alert rules

    @model_validator(mode="after")
    def _chain(self) -> PipelineConfig:
        names = [s.name for s in self.stages]
        for s in self.stages:
            if names.count(s.name) > 1:
                raise ValueError(f"stage name {s.name!r} is used more than once")
        inputs = [s.input for s in self.stages]
        for s in self.stages:
            if inputs.count(s.input) > 1:
                raise ValueError(f"input topic {s.input!r} is read by more than one stage")
        for s in self.stages:
            if s.output is not None and s.output not in inputs:
                raise ValueError(
                    f"stage {s.name!r}: output topic {s.output!r} is no stage's input"
                    f" (inputs: {', '.join(inputs)})"
                )
        return self

    def stage(self, name: str) -> StageConfig:
        """The stage called ``name``; ConfigError naming the known stages otherwise."""
        for s in self.stages:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.stages)
        raise ConfigError(f"{self.source or 'stages'}: no stage {name!r} (stages: {known})")

    def next_stage(self, name: str) -> StageConfig | None:
        """The stage that reads the output topic of stage ``name`` (None at the chain's end)."""
        out = self.stage(name).output
        return None if out is None else next(s for s in self.stages if s.input == out)

    @property
    def topics(self) -> list[str]:
        """Every topic the chain uses."""
        return sorted({s.input for s in self.stages} | {s.output for s in self.stages if s.output})


def default_stages_path() -> Path:
    """Path of the default chain shipped with jaas (ingest -> rtraw -> reco -> index -> publish)."""
    return Path(str(resources.files("jaas.kup") / DEFAULT_STAGES))


def _format(err: dict[str, Any], located: Located) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    line = line_of(located, loc)
    where = f"{located.path}:{line}" if line is not None else located.path
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {key or '(top level)'}: {msg}"


def load_stages(path: str | os.PathLike[str] | None = None) -> PipelineConfig:
    """Load and validate a stages YAML file (default: the chain shipped with jaas).

    Args:
        path: the YAML file; ``None`` for :func:`default_stages_path`.

    Raises:
        ConfigError: one line per problem, each ``FILE:LINE: key.path: what is wrong``.

    Example:
        >>> cfg = load_stages()
        >>> [s.name for s in cfg.stages]
        ['ingest', 'rtraw', 'reco', 'index', 'publish']
    """
    where = path or default_stages_path()
    try:
        located = load_located(where)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    except RecursionError:
        raise ConfigError(f"{where}: a YAML alias refers to itself (recursive alias)") from None
    data = located.data
    if not isinstance(data, dict):
        raise ConfigError(f"{located.path}:1: expected a mapping with a 'stages' list")
    try:
        return PipelineConfig.model_validate({**data, "source": located.path})
    except ValidationError as exc:
        lines = [_format(dict(e), located) for e in exc.errors()]
        raise ConfigError("invalid stages file:\n" + "\n".join(lines)) from None


class KupSettings(BaseModel):
    """Where the pipeline's pieces are: state dir, database, broker, stages, executor.

    Stored as ``STATE_DIR/kup.json`` by ``jaas kup up`` so that every worker, the relay
    and ``status``/``ingest``/``down`` read the same settings. ``bootstrap=None`` means
    the embedded broker; give ``host:port`` of an Apache Kafka cluster to use that instead.
    """

    model_config = ConfigDict(extra="forbid")

    state_dir: Path
    db_url: str | None = None
    bootstrap: str | None = None
    broker_port: int | None = None
    stages: str | None = None
    executor: str = "local"
    slots: int = Field(default=2, ge=1)
    warm: bool = True  # local executor: fork attempts from a pre-imported runner
    session_timeout_ms: int = Field(default=6000, ge=1000)
    poll_interval: float = Field(default=0.2, gt=0)
    reconcile_interval: float = Field(default=2.0, gt=0)
    # a queued job whose stage's group has committed past every message of it for this
    # many seconds gets a fresh message (see Relay.requeue_unconsumed)
    requeue_after: float = Field(default=15.0, gt=0)
    group_prefix: str = "jaas-kup"
    data_dir: Path | None = None

    @property
    def database(self) -> str:
        """The ledger's SQLAlchemy URL (default: SQLite in the state dir)."""
        return self.db_url or f"sqlite:///{self.state_dir.resolve() / 'kup.db'}"

    @property
    def data(self) -> Path:
        """Where stage products and attempt logs go (default ``STATE_DIR/data``)."""
        return self.data_dir or self.state_dir / "data"

    def pipeline(self) -> PipelineConfig:
        """The stage chain these settings name."""
        return load_stages(self.stages)

    def save(self) -> Path:
        """Write ``STATE_DIR/kup.json``."""
        from jaas._io import atomic_path

        path = self.state_dir / "kup.json"
        with atomic_path(path) as tmp:
            tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, state_dir: str | os.PathLike[str]) -> KupSettings:
        """Read ``STATE_DIR/kup.json``; ConfigError saying to run ``jaas kup up`` if missing."""
        path = Path(state_dir) / "kup.json"
        if not path.is_file():
            raise ConfigError(f"{path}: no pipeline here; start one with `jaas kup up {state_dir}`")
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid settings: {exc}") from None
