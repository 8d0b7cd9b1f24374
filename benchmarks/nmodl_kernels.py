"""Benchmark of the kernels translated from NMODL (brainsim.nmodl) against the hand-written ones of
kernels/mechanisms: rates + current on --n instances (one per node, V over −100..60 mV), median of --reps
timed runs after a compiling one, for every L5PC mechanism that has a hand-written counterpart.

    .venv/bin/python benchmarks/nmodl_kernels.py [--mods ../shared/reference/l5pc/mechanisms] [--n 100000]

Prints per mechanism the hand-written and the generated time (ms) and their ratio (generated/hand-written;
below 1 is faster), then the geometric mean of the ratios and the CPU.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from brainsim.kernels.mechanisms import CATALOGUE
from brainsim.nmodl import load

ROOT = Path(__file__).resolve().parents[1]
COUNTERPART = {
    "NaTa_t": "nata", "NaTs2_t": "nats", "Nap_Et2": "nap", "SKv3_1": "kv31", "K_Pst": "kp", "K_Tst": "kt",
    "Im": "im", "Ih": "ih", "Ca_HVA": "cahva", "Ca_LVAst": "calva", "SK_E2": "sk", "CaDynamics_E2": "cadyn",
}  # fmt: skip


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(mod, args, reps):
    """Median wall time (s) of mod.rates + mod.current over reps runs, after one that compiles."""
    vi, node, p, s, ion, celsius, xinf, tau, v, i_acc, g_acc, dids = args
    times = []
    for r in range(reps + 1):
        t0 = time.perf_counter()
        mod.rates(vi, node, p, ion, celsius, xinf, tau)
        mod.current(v, node, p, s, ion, i_acc, g_acc, dids)
        if r:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def case(mod, n, rng):
    v = rng.uniform(-100.0, 60.0, n)
    node = np.arange(n, dtype=np.int32)
    p = np.array([d for _, d, _ in mod.PARAMS], dtype=float)[:, None].repeat(n, axis=1)
    s = rng.uniform(0.0, 1.0, (len(mod.STATES), n))
    ion = np.array([rng.uniform(-1e-3, 0.0, n), 10.0 ** rng.uniform(-5.0, -3.0, n)])
    xinf, tau, dids = np.empty_like(s), np.empty_like(s), np.empty_like(s)
    return [v.copy(), node, p, s, ion, 34.0, xinf, tau, v, np.zeros(n), np.zeros(n), dids]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = (
        Path(os.environ.get("BRAINSIM_L5PC", ROOT.parent / "shared" / "reference" / "l5pc")) / "mechanisms"
    )
    parser.add_argument("--mods", type=Path, default=default, help="folder of the L5PC .mod files")
    parser.add_argument("--n", type=int, default=100_000, help="instances (default 100000)")
    parser.add_argument("--reps", type=int, default=21, help="timed runs per kernel pair (default 21)")
    args = parser.parse_args()
    if not args.mods.is_dir():
        sys.exit(f"no folder {args.mods} (set --mods or BRAINSIM_L5PC)")
    os.environ.setdefault("BRAINSIM_CACHE", tempfile.mkdtemp(prefix="brainsim_nmodl_bench_"))
    rng = np.random.default_rng(0)
    print(f"{'mechanism':<15} {'hand (ms)':>10} {'generated (ms)':>15} {'ratio':>7}")
    ratios = []
    for name, hand_name in COUNTERPART.items():
        hand, gen = CATALOGUE[hand_name], load(args.mods / f"{name}.mod")
        data = case(hand, args.n, rng)
        t_hand = timed(hand, data, args.reps)
        gen_data = list(data)
        gen_data[2] = np.array([d for _, d, _ in gen.PARAMS], dtype=float)[:, None].repeat(args.n, axis=1)
        t_gen = timed(gen, gen_data, args.reps)
        ratios.append(t_gen / t_hand)
        print(f"{name:<15} {t_hand * 1e3:>10.3f} {t_gen * 1e3:>15.3f} {t_gen / t_hand:>7.3f}")
    print(f"geometric mean ratio (generated / hand-written): {np.exp(np.mean(np.log(ratios))):.3f}")
    print(f"n = {args.n}, median of {args.reps} runs; CPU: {cpu_name()}")


if __name__ == "__main__":
    main()
