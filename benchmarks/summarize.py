"""Benchmark of `brainsim summarize`: a run store of >= 1e8 spikes written by the run writer, summarised
on a local Dask cluster of 1 and of 2 workers; wall time, peak memory (the summarising process and its
workers together, and the largest single process) and the speed-up, median of --reps runs each.

    .venv/bin/python benchmarks/summarize.py [--spikes 1e8] [--reps 3] [--store /tmp/bench_run.zarr]

The store is made once and reused while its spike count matches (--regenerate to rebuild it).
"""

import argparse
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from brainsim.errors import StoreError
from brainsim.io.run_store import RunStore
from brainsim.io.zarr_store import RunWriter
from brainsim.postprocess.summarize import summarize

N_REGIONS = 50
E_PER_REGION, I_PER_REGION = 1600, 400  # 100,000 cells
E_RATE, I_RATE = 10.0, 40.0  # Hz


def populations():
    table, first = [], 0
    for r in range(N_REGIONS):
        for kind, count in (("excitatory", E_PER_REGION), ("inhibitory", I_PER_REGION)):
            cell_type = "pyr" if kind == "excitatory" else "fs"
            table.append(
                {
                    "name": f"R{r:02d}.{cell_type}",
                    "region": f"R{r:02d}",
                    "cell_type": cell_type,
                    "first_gid": first,
                    "count": count,
                    "kind": kind,
                }
            )
            first += count
    return table


def make_store(path, n_spikes, seed=0):
    """Write a run store of about n_spikes Poisson spikes (with rate modulations per region) and a
    regions group, second by second, as the engine's writer does."""
    rng = np.random.default_rng(seed)
    pops = populations()
    n_cells = pops[-1]["first_gid"] + pops[-1]["count"]
    rates = np.concatenate(
        [np.full(p["count"], E_RATE if p["kind"] == "excitatory" else I_RATE) for p in pops]
    )
    tstop = 1000.0 * np.ceil(n_spikes / rates.sum())
    summary = {"bin": None, "window": 50.0, "tr": 100.0, "alerts": []}
    config = {"name": "summary_benchmark", "simulation": {"tstop": tstop}, "summary": summary}
    counts = {"cells": n_cells, "compartments": n_cells, "equations": 4 * n_cells}
    store = RunWriter.create(path, config=config, counts=counts, overwrite=True, populations=pops)
    labels = [f"R{r:02d}" for r in range(N_REGIONS)]
    angle = np.linspace(0, 2 * np.pi, N_REGIONS, endpoint=False)
    centres = np.stack([60 * np.cos(angle), 80 * np.sin(angle), 20 * np.cos(3 * angle)], axis=1)
    n_bins = int(tstop)
    store.add_regions(
        bin_ms=1.0,
        n_bins=n_bins,
        labels=labels,
        hemisphere=["left" if c[0] < 0 else "right" for c in centres],
        centres=centres,
        n_cells=[E_PER_REGION + I_PER_REGION] * N_REGIONS,
    )
    frequency = rng.uniform(4, 60, N_REGIONS)  # Hz: each region's rhythm
    total = 0
    for second in range(int(tstop / 1000)):
        t0 = second * 1000.0
        n = rng.poisson(rates)
        gid = np.repeat(np.arange(n_cells), n)
        times = t0 + rng.uniform(0, 1000.0, gid.size)
        store.append_spikes(gid, times)
        t = t0 + np.arange(1000) + 0.5
        v = -65 + 3 * np.sin(2 * np.pi * frequency * t[:, None] * 1e-3) + rng.normal(0, 1, (1000, N_REGIONS))
        store.write_regions(second * 1000, np.zeros((1000, N_REGIONS)), v)
        store.flush()
        store.publish(t0 + 1000.0)
        total += gid.size
        print(f"\rwriting: {t0 / 1000 + 1:.0f} / {tstop / 1000:.0f} s, {total:,} spikes", end="", flush=True)
    print()
    store.finish("complete")
    return total


class PeakMemory:
    """Samples the RSS of this process and its children every 50 ms: peak of the sum and of the largest."""

    def __init__(self):
        self.total = self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        me = psutil.Process()
        while not self._stop.is_set():
            sizes = []
            for process in [me, *me.children(recursive=True)]:
                try:
                    sizes.append(process.memory_info().rss)
                except psutil.Error:
                    pass
            self.total, self.largest = max(self.total, sum(sizes)), max(self.largest, max(sizes))
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def measure(store, out, workers):
    with PeakMemory() as memory:
        start = time.perf_counter()
        summarize(store, out, scheduler="local", workers=workers, overwrite=True, log=lambda line: None)
        wall = time.perf_counter() - start
    return wall, memory.total / 2**20, memory.largest / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spikes", type=float, default=1e8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--store", default="/tmp/brainsim_bench_run.zarr")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    store = Path(args.store)
    try:
        existing = RunStore.open(store).spikes.sizes["spike"]
    except StoreError:  # none yet, or not a readable run store
        existing = 0
    if args.regenerate or existing < args.spikes:
        start = time.perf_counter()
        existing = make_store(store, int(args.spikes))
        print(f"wrote {existing:,} spikes in {time.perf_counter() - start:.0f} s")
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**30
    print(f"store: {store} ({existing:,} spikes, {size:.2f} GiB on disk)")
    results = {}
    for workers in (1, 2):
        runs = [measure(store, store.with_name("bench.summary.zarr"), workers) for _ in range(args.reps)]
        for wall, total, largest in runs:
            print(
                f"  {workers} worker(s): {wall:6.1f} s, peak RSS {total:6.0f} MiB in all, "
                f"{largest:5.0f} MiB largest"
            )
        results[workers] = [statistics.median(column) for column in zip(*runs)]
    print(
        f"\n| workers | wall (s, median of {args.reps}) | spikes/s | peak RSS all (MiB) "
        "| largest process (MiB) |"
    )
    print("|---|---|---|---|---|")
    for workers, (wall, total, largest) in results.items():
        print(f"| {workers} | {wall:.1f} | {existing / wall:.2e} | {total:.0f} | {largest:.0f} |")
    print(f"\nspeed-up 1 -> 2 workers: {results[1][0] / results[2][0]:.2f}x")


if __name__ == "__main__":
    main()
