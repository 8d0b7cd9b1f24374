"""Run configs: declared options (schema), loading and validation."""

from .load import RunConfig, load_config, resolve_config

__all__ = ["RunConfig", "load_config", "resolve_config"]
