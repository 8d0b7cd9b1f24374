"""`brainsim summarize --scheduler mpi` inside a real MPI job (dask-mpi: rank 0 schedules, rank 1 runs
the command, rank 2 is the worker) gives the same summary as the in-process scheduler."""

import sys
from pathlib import Path

import numpy as np
import xarray as xr
from mpi_runs import mpirun

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "postprocess"))
from test_summarize import write_run  # noqa: E402

from brainsim.postprocess.summarize import summarize  # noqa: E402


def test_summary_on_three_ranks_equals_in_process(tmp_path):
    run, _, _ = write_run(tmp_path / "run.zarr")
    reference = xr.open_zarr(
        summarize(run, tmp_path / "sync.zarr", scheduler="sync", log=lambda line: None).path
    )
    done = mpirun(
        3, "summarize", str(run), "-o", str(tmp_path / "mpi.zarr"), "--scheduler", "mpi", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "summary: " in done.stdout and "Traceback" not in done.stderr
    ds = xr.open_zarr(tmp_path / "mpi.zarr")
    for name in ("rate", "cv_isi", "synchrony", "hypersynchrony", "band_power", "bold", "fc_rate"):
        np.testing.assert_allclose(ds[name].values, reference[name].values, rtol=1e-12, err_msg=name)
