"""Exception types. Every message says what was wrong, where, and what is allowed."""


class BrainsimError(Exception):
    """Base class of every error brainsim raises on purpose."""


class ConfigError(BrainsimError):
    """A config value is invalid: names the key path, the bad value and what is allowed."""

    def __init__(self, path, value, allowed, detail=None):
        self.path, self.value, self.allowed = path, value, allowed
        text = f"config error at '{path}': got {value!r}; allowed: {allowed}"
        super().__init__(text if detail is None else f"{text} ({detail})")


class MorphologyError(BrainsimError):
    """A morphology is malformed: names the source file and line where known."""

    def __init__(self, message, source=None, line=None):
        self.source, self.line = source, line
        where = "" if source is None else f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


class ModelError(BrainsimError):
    """The model cannot be built (e.g. a delay shorter than dt, an unknown synapse)."""


class NumericalError(BrainsimError):
    """The solution blew up: names the cell, the compartment, the time and the value."""

    def __init__(self, gid, compartment, time, value, detail=""):
        self.gid, self.compartment, self.time, self.value = gid, compartment, time, value
        super().__init__(
            f"numerical blow-up in cell gid={gid}, compartment {compartment}, at t={time:.6g} ms: "
            f"V={value!r} mV{detail}"
        )
