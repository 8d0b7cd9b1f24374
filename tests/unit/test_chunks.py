"""A run whose cells are stepped chunk by chunk (engine.group.CHUNK_NODES) gives, to the last bit, the spikes,
traces and region summaries of the same run stepped whole: events cross chunks through the ring's
connections, probes and detectors sit in every chunk."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from brainsim import api
from brainsim.engine import group as group_module

RING = Path(__file__).resolve().parents[2] / "configs" / "bench" / "m2_ring.yaml"


def ring(tmp_path, name):
    raw = yaml.safe_load(RING.read_text())
    soma = {"cell": "ring", "location": "soma(0.5)"}
    raw["probes"] = [
        {"name": "soma", "variable": "v", "cells": [0, 3, 7], "sampling": 0.1, **soma},
        {"name": "syn", "variable": "syn.g", "cells": [1, 6], "sampling": 0.05, **soma},
    ]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    sets = ["cells.ring.count=8", "simulation.tstop=60", "simulation.method=staggered"]
    return api.run(api.load_config(path, set=sets), tmp_path / f"{name}.zarr", overwrite=True, progress=False)


@pytest.mark.parametrize("chunk", [250, 700])  # a chunk per cell; three cells per chunk
def test_chunked_run_is_the_whole_run(tmp_path, monkeypatch, chunk):
    assert group_module.cell_chunks([203] * 8, chunk).size - 1 in (8, 3)  # 203 nodes per ring cell
    whole = ring(tmp_path, "whole")
    monkeypatch.setattr(group_module, "CHUNK_NODES", chunk)
    chunked = ring(tmp_path, "chunked")
    assert whole.spikes["gid"].size >= 8  # the kick went round the ring
    for key in ("gid", "time"):
        assert np.array_equal(whole.spikes[key].values, chunked.spikes[key].values)
    for name in ("soma", "syn"):
        xr.testing.assert_identical(whole.traces[name].load(), chunked.traces[name].load())
