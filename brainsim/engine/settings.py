"""How a simulation is run, apart from what is simulated (the recipe): step, stop time, method, intervals."""

import math
from dataclasses import asdict, dataclass, field, fields

from ..errors import ConfigError


@dataclass(frozen=True)
class SimulationSettings:
    """Time stepping and output cadence of a simulation. Units: ms for simulated time, s for wall time."""

    tstop: float  # ms: the run's end (the store's sampling grid and region rows reach it)
    dt: float = 0.025  # ms: the step (the first step of adaptive PETSc methods)
    method: str = "petsc"  # "petsc" (a PETSc TS chosen by `petsc` options) or "staggered"
    petsc: dict = field(default_factory=dict)  # PETSc options without the leading '-'
    voltage_limit: float = 1000.0  # mV: any |V| beyond it (or not finite) stops the run with an error
    progress_interval: float = 2.0  # s of wall time between progress lines (0: none)
    flush_interval: float = 10.0  # s of wall time between writes to the store
    checkpoint_every: float | None = None  # ms of simulated time between checkpoints (None: on signals)
    region_bin: float = 1.0  # ms: the bin of the region summaries
    stop_grace: float = 30.0  # s of wall time a stop signal waits for the next epoch boundary (checkpoint)
    warmup: float = 0.0  # ms simulated at rest before t = 0, not recorded (Simulation.settle)

    METHODS = ("petsc", "staggered")
    OUTPUT_KEYS = ("flush_interval", "checkpoint_every", "region_bin", "stop_grace")

    @classmethod
    def key_path(cls, name):
        """The config key path of a setting (errors name it)."""
        return f"{'output' if name in cls.OUTPUT_KEYS else 'simulation'}.{name}"

    def __post_init__(self):
        positive = {"tstop": self.tstop, "dt": self.dt, "voltage_limit": self.voltage_limit}
        positive.update(
            flush_interval=self.flush_interval, region_bin=self.region_bin, stop_grace=self.stop_grace
        )
        if self.checkpoint_every is not None:
            positive["checkpoint_every"] = self.checkpoint_every
        for name, value in positive.items():
            if not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(self.key_path(name), value, "a number > 0")
        if self.tstop < self.dt:
            raise ConfigError("simulation.tstop", self.tstop, f"a stop time >= dt ({self.dt} ms)")
        if self.method not in self.METHODS:
            raise ConfigError("simulation.method", self.method, f"one of {list(self.METHODS)}")
        if not isinstance(self.warmup, (int, float)) or not 0 <= self.warmup < math.inf:
            raise ConfigError("simulation.warmup", self.warmup, "a time >= 0 (ms)")
        if not isinstance(self.progress_interval, (int, float)) or self.progress_interval < 0:
            raise ConfigError("simulation.progress_interval", self.progress_interval, "a number >= 0 (s)")

    @classmethod
    def from_config(cls, config, **changes):
        """The settings of a validated config (its `simulation` and `output` sections), with changes."""
        sim, out = config["simulation"], config["output"]
        values = {f.name: sim[f.name] for f in fields(cls) if f.name in sim}
        values.update({f.name: out[f.name] for f in fields(cls) if f.name in out})
        values.update(changes)
        return cls(**values)

    def config_sections(self, config):
        """config's `simulation` and `output` sections with these settings in them (what the store and
        checkpoints record, so they describe the run that was made)."""
        mine = asdict(self)
        sim = {key: mine.get(key, value) for key, value in config["simulation"].items()}
        out = {key: mine.get(key, value) for key, value in config["output"].items()}
        return {**config.data, "simulation": sim, "output": out}


def milliseconds(text, key="--checkpoint-every"):
    """A simulated time given as '50ms', '0.5s' or '50' (ms), in ms; ConfigError naming key unless it is
    a finite time > 0."""
    text = str(text).strip()
    scale = 1000.0 if text.endswith("s") and not text.endswith("ms") else 1.0
    try:
        value = float(text.removesuffix("ms").removesuffix("s")) * scale
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(key, text, "a time > 0 such as 50ms, 0.5s or 50 (ms)")
    return value
