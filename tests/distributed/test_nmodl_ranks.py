"""A config with NMODL mechanisms (`mechanisms.paths`) under mpiexec: every rank loads the modules itself
from an empty translated-module cache, and 2 ranks give the store of 1 rank and of the built-in `hh`."""

import os

import numpy as np
import yaml
from mpi_runs import mpirun, read, same
from support import HH_MOD, ROOT

RING = {
    "name": "hhmod_ring",
    "mechanisms": {"paths": ["mods"]},
    "simulation": {"tstop": 40.0, "dt": 0.025, "method": "staggered"},
    "cells": [
        {
            "name": "ring",
            "count": 4,
            "morphology": {"kind": "ball_and_stick", "dend_length": 200.0},
            "discretization": {"per_branch": 3},
            "regions": {"soma": {"mechanisms": {"hhmod": {}}}, "dend": {"mechanisms": {"pas": {}}}},
        }
    ],
    "synapses": [{"name": "syn", "cell": "ring", "mechanism": "expsyn", "location": "dend(0.5)"}],
    "connections": [
        {
            "source": "ring",
            "target": "ring",
            "synapse": "syn",
            "rule": {"kind": "ring"},
            "weight": 0.05,
            "delay": 2.0,
        },
    ],  # fmt: skip
    "stimuli": [{"kind": "iclamp", "cell": "ring", "cells": [0], "duration": 2.0, "amplitude": 1.0}],
    "probes": [
        {"name": "soma", "variable": "v", "cell": "ring", "cells": "all", "sampling": 0.5},
        {"name": "m", "variable": "hhmod.m", "cell": "ring", "cells": [1, 3]},
    ],  # fmt: skip
}


def test_two_ranks_load_the_mods_and_match_one(tmp_path, monkeypatch):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "hhmod.mod").write_text(HH_MOD.replace("SUFFIX hhx", "SUFFIX hhmod"))
    (tmp_path / "ring.yaml").write_text(yaml.safe_dump(RING))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    stores = {}
    for ranks in (2, 1):
        cache = tmp_path / f"cache{ranks}"
        monkeypatch.setenv("BRAINSIM_CACHE", str(cache))
        store = tmp_path / f"np{ranks}.zarr"
        res = mpirun(ranks, "run", "ring.yaml", "-o", str(store), "-q", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        written = [p for p in (cache / "nmodl").glob("*.py") if "NAME = 'hhmod'" in p.read_text()]
        assert len(written) == 1  # written once, whoever won the race (the built-ins' beside it)
        stores[ranks] = read(store)
    gid, _, traces = stores[1]
    assert np.unique(gid).size == 4  # the activity goes round the ring, across the ranks
    assert same(stores[2], stores[1])
    regions = {"soma": {"mechanisms": {"hh": {}}}, "dend": {"mechanisms": {"pas": {}}}}
    built_in = {**RING, "mechanisms": {}, "cells": [{**RING["cells"][0], "regions": regions}]}
    built_in["probes"] = [RING["probes"][0], {**RING["probes"][1], "variable": "hh.m"}]
    (tmp_path / "hh.yaml").write_text(yaml.safe_dump(built_in))
    res = mpirun(2, "run", "hh.yaml", "-o", str(tmp_path / "hh.zarr"), "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    hh_gid, hh_time, hh_traces = read(tmp_path / "hh.zarr")
    np.testing.assert_array_equal(stores[2][0], hh_gid)
    np.testing.assert_allclose(stores[2][1], hh_time, rtol=0, atol=1e-8)
    for name in traces:
        np.testing.assert_allclose(stores[2][2][name], hh_traces[name], rtol=0, atol=1e-8)
