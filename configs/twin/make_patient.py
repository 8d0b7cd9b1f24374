"""Write the synthetic patient's recordings: simulate patient_brain.yaml under the known overlay
true_patient.yaml, add measurement noise, write its EEG as an EDF file (MNE's export) and its regions'
firing rates as a table, and read both with `brainsim observe` into an observation store.

    .venv/bin/python configs/twin/make_patient.py -o out/twin        # about 15 s on one core

writes out/twin/patient_eeg.edf, out/twin/patient_rates.tsv and out/twin/patient_obs.zarr (plus the
simulated run and its summary, truth.zarr and truth.summary.zarr). Then:

    .venv/bin/brainsim fit configs/twin/patient_brain.yaml --observations out/twin/patient_obs.zarr \\
        --parameters configs/twin/fit.yaml -o out/twin/fit
"""

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
UNITS = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6}


def make_patient(
    out, *, config=HERE / "patient_brain.yaml", patient=HERE / "true_patient.yaml", tstop=1200.0, seed=101,
    eeg_noise=0.05, rate_noise=0.1, interventions=(), log=print,
):  # fmt: skip
    """Simulate the known patient for tstop ms (seed: the patient's own random streams; interventions:
    intervention files applied during the run), write its recordings under `out` and return the observation
    store's path. eeg_noise: white noise added to each EEG channel, as a fraction of its standard deviation;
    rate_noise: the standard deviation of the log of a mean-preserving lognormal factor on each rate
    sample."""
    import mne
    from mpi4py import MPI

    import brainsim
    from brainsim.parallel.context import Context
    from brainsim.postprocess.layout import open_summary
    from brainsim.postprocess.summarize import summarize
    from brainsim.twin.observe import observe

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"simulation.tstop": tstop, "simulation.seed": seed}
    cfg = brainsim.load_config(config, settings, patient=patient, interventions=interventions)
    log(f"make_patient: simulating {cfg['name']} under {Path(patient).name} for {tstop:g} ms")
    brainsim.run(cfg, out / "truth.zarr", overwrite=True, context=Context(MPI.COMM_SELF), progress=False)
    summary = summarize(
        out / "truth.zarr", out / "truth.summary.zarr", scheduler="sync", overwrite=True, log=log
    )
    ds = open_summary(summary.path)
    rng = np.random.default_rng(seed)
    bin_ms = float(ds.attrs["bin"])
    eeg = ds["eeg"].values.astype(np.float64)
    eeg = eeg + eeg_noise * eeg.std(axis=0) * rng.standard_normal(eeg.shape)
    info = mne.create_info([str(e) for e in ds["electrode"].values], 1000.0 / bin_ms, "eeg")
    raw = mne.io.RawArray((eeg * UNITS[ds["eeg"].attrs["units"]]).T, info, verbose="error")
    edf = out / "patient_eeg.edf"
    mne.export.export_raw(edf, raw, fmt="edf", overwrite=True, verbose="error")
    factor = np.exp(rate_noise * rng.standard_normal(ds["rate"].shape) - rate_noise**2 / 2)
    rate = ds["rate"].values.astype(np.float64) * factor
    table = out / "patient_rates.tsv"
    labels = [str(r) for r in ds["region"].values]
    np.savetxt(table, rate, delimiter="\t", header="\t".join(labels), comments="", fmt="%.6g")
    path = observe([edf, table], out / "patient_obs.zarr", connectome=str(config), kind="rate", bin_ms=bin_ms,
                   overwrite=True, log=log)  # fmt: skip
    log(f"make_patient: {edf}, {table} -> {path}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-o", "--output", default="out/twin", help="folder of the recordings (default out/twin)"
    )
    parser.add_argument("--tstop", type=float, default=1200.0, help="length of the recording, ms")
    parser.add_argument("--seed", type=int, default=101, help="the patient's own random streams")
    args = parser.parse_args(argv)
    make_patient(args.output, tstop=args.tstop, seed=args.seed, log=lambda line: print(line, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
