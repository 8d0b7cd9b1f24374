"""Exception types. Every message says what was wrong, where, and what is allowed."""

import reprlib
import warnings
from pathlib import Path


class BrainsimError(Exception):
    """Base class of every error brainsim raises on purpose."""


VALUE_LIMIT = 200
"""Most characters of a bad value (or key path) an error message shows; a longer one is cut, saying so."""
TEXT_LIMIT = 2000
"""Most characters of what is allowed, or of a detail, that an error message shows."""


class _ShortRepr(reprlib.Repr):
    """reprlib's bounded repr, with integers too long for Python's int-to-str limit named by their size."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 3, 6, 8, 8, 8
        self.maxstring, self.maxother, self.maxlong = 80, 80, 40

    def repr_int(self, x, level):
        if x.bit_length() > 3000:
            return f"<an integer of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return super().repr_int(x, level)


def short_repr(value, limit=VALUE_LIMIT):
    """repr(value) when it takes at most `limit` characters, else a shortened one saying so (walks only as
    much of the value as it shows: an expanded YAML alias bomb costs no more than a small value)."""
    if _fits(value, limit):
        text = repr(value)
        if len(text) <= limit:
            return text
    return f"{_ShortRepr().repr(value)[:limit]} (shortened)"


def _fits(value, limit):
    """Whether repr(value) may fit in limit characters (a walk that stops once the estimate passes it)."""
    budget, stack = limit, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            budget -= len(item) + 2
        elif isinstance(item, int):
            budget -= item.bit_length() // 3 + 1
        elif isinstance(item, dict):
            budget -= 2 + 4 * len(item)
            if budget >= 0:
                stack.extend([*item.keys(), *item.values()])
        elif isinstance(item, (list, tuple, set, frozenset)):
            budget -= 2 + 2 * len(item)
            if budget >= 0:
                stack.extend(item)
        else:
            budget -= 8
        if budget < 0:
            return False
    return True


def _cut(text, limit):
    """text, or its first limit characters saying how many more there were."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


class ConfigError(BrainsimError):
    """A config value is invalid: names the key path, the bad value and what is allowed."""

    def __init__(self, path, value, allowed, detail=None, file=None):
        self.path, self.value, self.allowed, self.detail, self.file = path, value, allowed, detail, file
        shown = _cut(str(path), VALUE_LIMIT)
        where = f"'{shown}'" if file is None else f"'{shown}' (from {file})"
        text = f"config error at {where}: got {short_repr(value)}; allowed: {_cut(str(allowed), TEXT_LIMIT)}"
        super().__init__(text if detail is None else f"{text} ({_cut(str(detail), TEXT_LIMIT)})")

    def in_file(self, file):
        """This error naming the file its key path is in."""
        return ConfigError(self.path, self.value, self.allowed, self.detail, str(file))

    def from_overlay(self, overlays):
        """This error naming the overlay file its key path came from ({path prefix: file}), if any."""
        for prefix, file in overlays.items():
            if self.file is None and (
                self.path == prefix or self.path.startswith((prefix + ".", prefix + "["))
            ):
                return self.in_file(file)
        return self


class MorphologyError(BrainsimError):
    """A morphology is malformed: names the source file and line where known."""

    def __init__(self, message, source=None, line=None):
        self.source, self.line = source, line
        where = "" if source is None else f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


class MechanismError(BrainsimError):
    """An NMODL mechanism cannot be translated: names the .mod file, the line and the construct."""

    def __init__(self, message, source=None, line=None):
        self.source, self.line = source, line
        where = "" if source is None else f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


class NumericalError(BrainsimError):
    """The solution blew up or the solver failed: names the cell, the compartment, the time and V there."""

    def __init__(self, gid, compartment, time, value, detail="", what="numerical blow-up"):
        self.gid, self.compartment, self.time, self.value = gid, compartment, time, value
        super().__init__(
            f"{what} in cell gid={gid}, compartment {compartment}, at t={time:.6g} ms: V={value!r} mV{detail}"
        )


class Interrupted(BrainsimError):
    """The run was stopped by a signal (Ctrl-C, SIGTERM) at an epoch boundary; its outputs are consistent."""

    def __init__(self, signal_name, time, checkpoint=True):
        self.signal_name, self.time, self.checkpoint = signal_name, time, checkpoint
        super().__init__(f"interrupted by {signal_name} at t={time:.6g} ms")


class StopTimeout(BrainsimError):
    """A stop signal was received but the run reached no epoch boundary (where it checkpoints) within its
    grace (output.stop_grace, s of wall time): it stopped where it was, without a checkpoint."""

    def __init__(self, signal_name, grace, time, boundary=None, t_reached=None):
        self.signal_name, self.grace, self.time, self.boundary = signal_name, grace, time, boundary
        self.t_reached = t_reached
        at = "during start-up" if time is None else f"at t={time:.6g} ms"
        until = "" if boundary is None else f" (the next one is at t={boundary:.6g} ms)"
        kept = "" if t_reached is None else f"; the store holds everything up to t_reached={t_reached:.6g} ms"
        super().__init__(
            f"stopped by {signal_name} {at}: no epoch boundary{until} was reached within "
            f"output.stop_grace = {grace:g} s of the signal, so no checkpoint was written{kept}. Allow "
            "more time for a stop (output.stop_grace; on SLURM a longer signal lead) or make epochs "
            "shorter in wall time (more ranks, fewer cells per rank)"
        )

    def reaching(self, t_reached):
        """This error, saying how far the store is complete (ms)."""
        return StopTimeout(self.signal_name, self.grace, self.time, self.boundary, t_reached)


class ConnectomeError(BrainsimError):
    """A connectome is malformed or missing: names the source (file, zip member) and what is allowed."""

    def __init__(self, message, source=None):
        self.source = source
        super().__init__(message if source is None else f"{source}: {message}")


class StoreError(BrainsimError):
    """A stored file (run store, summary store, checkpoint, decomposition) is missing, corrupt or of another
    kind: names the path and what was expected."""

    def __init__(self, path, message):
        self.path, self.message = Path(path), message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # raised in Dask workers, re-raised where the results are gathered
        return StoreError, (self.path, self.message)


class ObservationError(BrainsimError):
    """A patient's recording (EEG, fMRI, region time series, atlas) cannot be used as an observation:
    names the file and what is wrong or allowed."""

    def __init__(self, path, message):
        self.path, self.message = Path(path), message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):
        return ObservationError, (self.path, self.message)


class BrainsimWarning(UserWarning):
    """Something that runs but is probably not what was meant; the `brainsim` command prints it on stderr
    as `brainsim: warning: ...` (from Python it is an ordinary warning)."""


def warn(message):
    """Issue a BrainsimWarning (shown once per message in a process)."""
    warnings.warn(BrainsimWarning(message), stacklevel=2)
