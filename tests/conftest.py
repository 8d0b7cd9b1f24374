"""Fixtures shared by the test suite (helpers live in support.py)."""

import pytest
from support import simulate


@pytest.fixture
def run(tmp_path):
    """run(config, overrides) -> (the store read back, its path), the store in tmp_path."""
    counter = iter(range(10**6))

    def _run(config, overrides=()):
        return simulate(config, overrides, output=tmp_path / f"run{next(counter)}.zarr")

    return _run
