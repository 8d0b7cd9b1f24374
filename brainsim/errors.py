"""Exception types. Every message says what was wrong, where, and what is allowed."""

from pathlib import Path


class BrainsimError(Exception):
    """Base class of every error brainsim raises on purpose."""


class ConfigError(BrainsimError):
    """A config value is invalid: names the key path, the bad value and what is allowed."""

    def __init__(self, path, value, allowed, detail=None, file=None):
        self.path, self.value, self.allowed, self.detail, self.file = path, value, allowed, detail, file
        where = f"'{path}'" if file is None else f"'{path}' (from {file})"
        text = f"config error at {where}: got {value!r}; allowed: {allowed}"
        super().__init__(text if detail is None else f"{text} ({detail})")

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


class NumericalError(BrainsimError):
    """The solution blew up or the solver failed: names the cell, the compartment, the time and V there."""

    def __init__(self, gid, compartment, time, value, detail="", what="numerical blow-up"):
        self.gid, self.compartment, self.time, self.value = gid, compartment, time, value
        super().__init__(
            f"{what} in cell gid={gid}, compartment {compartment}, at t={time:.6g} ms: V={value!r} mV{detail}"
        )


class Interrupted(BrainsimError):
    """The run was stopped by a signal (Ctrl-C, SIGTERM) at an epoch boundary; its outputs are consistent."""

    def __init__(self, signal_name, time):
        self.signal_name, self.time = signal_name, time
        super().__init__(f"interrupted by {signal_name} at t={time:.6g} ms")


class ConnectomeError(BrainsimError):
    """A connectome is malformed or missing: names the source (file, zip member) and what is allowed."""

    def __init__(self, message, source=None):
        self.source = source
        super().__init__(message if source is None else f"{source}: {message}")


class StoreError(BrainsimError):
    """A stored file (run store, summary store, checkpoint, decomposition) is missing, corrupt or of another
    kind: names the path and what was expected."""

    def __init__(self, path, message):
        self.path = Path(path)
        super().__init__(f"{path}: {message}")
