"""Checks of the twin commands' numeric options (fit, follow and their plans): a ConfigError names the
option, the value and what is allowed."""

import math

from brainsim.errors import ConfigError


def whole(option, value, least, what="a whole number"):
    """value, when it is an int >= least (not a bool); ConfigError naming the option otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(option, value, f"{what} >= {least}")
    return value


def is_multiple(value, unit):
    """Whether value is a whole number >= 1 of unit (to a relative 1e-6)."""
    ratio = value / unit
    return ratio >= 1 - 1e-9 and abs(ratio - round(ratio)) < 1e-6


def window_ms(option, value, config):
    """A follower's window or horizon (ms): > 0, on the step grid and a whole number of region bins."""
    dt = float(config["simulation"]["dt"])
    region_bin = float(config["output"]["region_bin"])
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0 and is_multiple(value, dt) and is_multiple(value, region_bin)):
        raise ConfigError(
            option, value, f"a time > 0 (ms), a multiple of the step dt ({dt:g} ms) and of output.region_bin "
            f"({region_bin:g} ms)",
        )  # fmt: skip
    return value
