"""The default brain at rest, against published figures: runs configs/whole_brain.yaml on 2 ranks, without
and with each shipped intervention, and prints

* per cell type: mean rate (Hz) and mean CV of the interspike intervals (cells with >= 5 spikes);
* the EEG's spectral peak (Hz; `brainsim summarize`'s `eeg`, Welch over the recorded window);
* the correlation of functional connectivity (Pearson, region rates in FC_BIN ms bins over the recorded
  window) with the structural weights, over all region pairs and over the connected pairs (log weights),
  next to the 0.2-0.5 that resting-state whole-brain models report;
* per intervention: in how many untargeted regions the pyramidal cells' rate changes in the intervention's
  window, by how much, and with what confidence (paired per-cell test against the untreated run of the
  same seed), and the regions' z combined (Stouffer: the brain-wide shift beyond the targets);
* wall times.

    .venv/bin/python benchmarks/resting_brain.py [--out DIR] [--ranks 2] [--set KEY=VALUE ...]

The untreated and treated runs share the seed, so before an intervention starts they are the same brain.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.signal import welch

import brainsim

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs/whole_brain.yaml"
INTERVENTIONS = ("sodium_block", "stimulation", "lesion")
FC_BIN = 10.0  # ms: rate bins of the functional connectivity (as the summary's fc_rate)
Z_CHANGED = 3.2  # |z| above which a region counts as changed: two-sided p < 0.05 after Bonferroni over 76
REFERENCE = (
    "0.2-0.5: correlation of simulated resting-state FC with structural connectivity in whole-brain models "
    "(Honey et al. 2009, PNAS 106:2035; Deco et al. 2013, J Neurosci 33:11239)"
)
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
}


def run(out, ranks, sets, intervention=None):
    """One `brainsim run` of the default brain on `ranks` ranks; returns (store path, wall s)."""
    cmd = ["mpiexec", "-n", str(ranks), str(ROOT / ".venv/bin/brainsim"), "run", str(CONFIG), "-q"]
    cmd += ["-o", str(out)] + [arg for s in sets for arg in ("--set", s)]
    if intervention:
        cmd += ["--intervention", str(ROOT / f"configs/interventions/{intervention}.yaml")]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, **MPI_ENV})
    return out, time.perf_counter() - start


def cell_types(store):
    """{cell type: gid array} over the brain's populations."""
    gids = {}
    for p in store.populations:
        if p.count:
            gids.setdefault(p.cell_type, []).append(np.arange(p.first_gid, p.first_gid + p.count))
    return {name: np.concatenate(parts) for name, parts in gids.items()}


def rates_and_cvs(store):
    """{cell type: (mean rate Hz, mean CV of ISI, cells with a CV)} over the recorded window."""
    spikes = store.spikes.load()
    gid, t = spikes.gid.values, spikes.time.values
    order = np.lexsort((t, gid))
    gid, t = gid[order], t[order]
    starts = np.searchsorted(gid, np.arange(int(gid.max()) + 2 if gid.size else 1))
    out = {}
    for name, gids in cell_types(store).items():
        counts = np.bincount(gid, minlength=gids.max() + 1)[gids]
        cvs = []
        for g in gids[counts >= 5]:
            isi = np.diff(t[starts[g] : starts[g + 1]])
            cvs.append(isi.std() / isi.mean())
        out[name] = (counts.mean() / (store.tstop / 1000.0), float(np.mean(cvs)) if cvs else np.nan, len(cvs))
    return out


def eeg_peak(store_path, summary_path):
    """(peak frequency Hz, peak power / median power over 4-100 Hz) of the summary's EEG."""
    command = [str(ROOT / ".venv/bin/brainsim"), "summarize", str(store_path), "-o", str(summary_path)]
    subprocess.run(command + ["--overwrite"], check=True)
    summary = xr.open_zarr(summary_path)
    eeg = summary["eeg"].values.astype(float)
    fs = 1000.0 / float(np.diff(summary["time"].values[:2])[0])
    f, power = welch(eeg - eeg.mean(0), fs=fs, nperseg=min(512, eeg.shape[0]), axis=0)
    mean = power.mean(axis=1)
    band = (f >= 4.0) & (f <= 100.0)
    k = np.argmax(mean[band])
    return float(f[band][k]), float(mean[band][k] / np.median(mean[band]))


def fc_sc(store):
    """(r over all pairs, r over connected pairs with log weights, mean FC) of FC_BIN ms region rates."""
    regions = store.regions
    rate = regions["rate"].values
    per_bin = int(round(FC_BIN / float(regions.attrs["bin"])))
    n = rate.shape[0] // per_bin
    coarse = rate[: n * per_bin].reshape(n, per_bin, -1).mean(axis=1)
    keep = coarse.std(axis=0) > 0
    fc = np.corrcoef(coarse[:, keep].T)
    w = store.connectivity["sc_weights"].values[np.ix_(keep, keep)]
    w = w + w.T
    upper = np.triu_indices(int(keep.sum()), 1)
    linked = w[upper] > 0
    r_all = np.corrcoef(fc[upper], w[upper])[0, 1]
    r_linked = np.corrcoef(fc[upper][linked], np.log(w[upper][linked]))[0, 1]
    return float(r_all), float(r_linked), float(fc[upper].mean())


def window(item):
    """(start, stop) ms of an intervention's effect in the recorded window."""
    if item["kind"] == "drug":
        return item["onset"] + item["ramp"], None
    if item["kind"] == "stimulation":
        return item["start"], item["stop"]
    return item["at"] + 5.0, None


def propagation(untreated, treated, item):
    """Per untargeted region: (label, untreated Hz, treated Hz, z) of its pyramidal cells over the
    intervention's window, z the mean paired per-cell difference of spike counts over its standard error;
    and the targeted labels."""
    start, stop = window(item)
    stop = untreated.tstop if stop is None else stop
    duration = (stop - start) / 1000.0
    counts = []
    for store in (untreated, treated):
        spikes = store.spikes.load()
        inside = (spikes.time.values >= start) & (spikes.time.values < stop)
        counts.append(np.bincount(spikes.gid.values[inside], minlength=store.counts["cells"]))
    targets = set(item["regions"]) | {t["target"] for t in item.get("tracts", [])}
    rows = []
    for p in untreated.populations:
        if p.count < 2 or p.region is None or p.region in targets or p.cell_type != "pyr":
            continue
        cells = slice(p.first_gid, p.first_gid + p.count)
        a, b = counts[0][cells], counts[1][cells]
        d = b - a
        se = d.std(ddof=1) / np.sqrt(d.size)
        z = d.mean() / se if se > 0 else 0.0
        rows.append((p.region, a.mean() / duration, b.mean() / duration, z))
    return rows, sorted(targets)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out/resting_brain", help="folder for the stores")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    path, wall = run(args.out / "untreated.zarr", args.ranks, args.set)
    untreated = brainsim.open_run(path)
    timing, counts = untreated.timing, untreated.counts
    print(
        f"default brain: {counts['cells']} cells, {counts['equations']} equations, "
        f"warm-up {untreated.config['simulation']['warmup']:g} ms + {untreated.tstop:g} ms recorded "
        f"on {args.ranks} ranks: {wall:.1f} s wall (build {timing['build_s']:.1f} s, "
        f"recorded window {timing['run_s']:.1f} s, {timing['ns_per_compartment_step']:.0f} ns per "
        "compartment-step per rank)"
    )
    for name, (rate, cv, n) in rates_and_cvs(untreated).items():
        print(f"  {name:5s} rate {rate:6.2f} Hz   CV of ISI {cv:.2f} ({n} cells with >= 5 spikes)")
    peak, ratio = eeg_peak(path, args.out / "untreated_summary.zarr")
    print(f"  EEG peak {peak:.1f} Hz ({ratio:.1f}x the median power over 4-100 Hz)")
    r_all, r_linked, mean_fc = fc_sc(untreated)
    print(
        f"  FC ({FC_BIN:g} ms rates over {untreated.tstop:g} ms) vs SC: r = {r_all:.2f} over all pairs, "
        f"{r_linked:.2f} over connected pairs (log weights); mean FC {mean_fc:.3f}\n"
        f"    published: {REFERENCE}"
    )
    for name in INTERVENTIONS:
        path, wall = run(args.out / f"{name}.zarr", args.ranks, args.set, intervention=name)
        treated = brainsim.open_run(path)
        item = treated.config["interventions"][0]
        rows, targets = propagation(untreated, treated, item)
        changed = [r for r in rows if abs(r[3]) > Z_CHANGED]
        start, stop = window(item)
        stop = untreated.tstop if stop is None else stop
        print(
            f"{name} ({', '.join(targets)}; {start:g}-{stop:g} ms; {wall:.1f} s wall): "
            f"pyramidal rate changed in {len(changed)} of {len(rows)} other regions (|z| > {Z_CHANGED})"
        )
        for label, before, after, z in sorted(changed, key=lambda r: -abs(r[3]))[:8]:
            change = after - before
            print(f"    {label:8s} {before:6.2f} -> {after:6.2f} Hz  ({change:+.2f} Hz, z = {z:+.1f})")
        if rows:
            shift = np.mean([r[2] - r[1] for r in rows])
            combined = sum(r[3] for r in rows) / np.sqrt(len(rows))
            print(
                f"    mean change over the {len(rows)} other regions: {shift:+.3f} Hz "
                f"(their z combined, Stouffer: {combined:+.1f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
