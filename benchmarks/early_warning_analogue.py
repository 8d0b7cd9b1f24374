"""A linear-Gaussian analogue of the early-warning follow (benchmarks/early_warning.py), fast enough to
choose the random walk and the noises of configs/twin/drift/follow.yaml: one region's factor in the
follower's logit space u (bounds 0.5-6), observed once per 1 s window as y = u + noise (the rates' log
spread over the windows of a control, in u units), followed by the same stochastic ensemble Kalman filter
(J members, perturbed observations) with the same forecast model (u <- u + N(0, drift^2 W) + v W,
v <- v + N(0, trend^2 W)), warned when at least half of the members' u + v H crosses the factor at which the
truth's seizure-like synchrony begins (T of drift.yaml's ramp, 0.25x per s from 3 s). Prints, for each
setting, the fraction of drift follows warned at least 2 s before T for each T of seeds 1-5, and the
fraction of control follows (12 windows of one region) that warn at all.

    .venv/bin/python benchmarks/early_warning_analogue.py [--runs 400]
"""

import argparse
import math

import numpy as np

T_SEEDS = (7.75, 10.55, 10.9, 11.25, 10.35)  # s: T of seeds 1-5 (configs/twin/drift/drift.yaml)
SETTINGS = (  # (drift, trend, the noise the filter is told) in u units, per sqrt(s) and per s per sqrt(s)
    (0.3, 0.3, 0.12),  # drift and trend 0.3, rates' noise 0.15 in log
    (0.1, 0.15, 0.2),  # configs/twin/drift/follow.yaml: 0.1, 0.15, rates' noise 0.25 in log
    (0.1, 0.1, 0.2),
    (0.05, 0.1, 0.2),
)
SENSITIVITY = 1.25  # d log(rate) / du of the drifting region near the factor 1 (drift patients' recordings)


def u_of(factor):
    x = (factor - 0.5) / 5.5
    return math.log(x / (1 - x))


def follow(rng, drift, trend, told, true_sd, crit, ramp, members=12, windows=12, horizon=4.0):
    """Per window, whether the analogue warns."""
    u = u_of(1.0) + rng.normal(0, 0.3, members)
    v = np.zeros(members)
    out = []
    for k in range(windows):
        if k:
            u = u + rng.normal(0, drift, members)
            v = v + rng.normal(0, trend, members)
            u = u + v
        t = k + 0.5
        y = u_of(1 + 0.25 * max(t - 3.0, 0) if ramp else 1.0) + rng.normal(0, true_sd)
        g = u + rng.normal(0, 0.1, members)  # the members' own realisations
        x = np.stack([u, v])
        gain = ((x - x.mean(1, keepdims=True)) @ (g - g.mean())) / (members - 1) / (g.var(ddof=1) + told**2)
        x = x + np.outer(gain, y + rng.normal(0, told, members) - g)
        u, v = x
        out.append(np.mean(u + v * horizon > crit) >= 0.5)
    return np.array(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="follows per case")
    args = parser.parse_args(argv)
    true_sd = 0.25 / SENSITIVITY
    print(f"rates' log spread 0.25 -> {true_sd:.2f} in u; {args.runs} follows per case")
    print(f"{'drift':>6} {'trend':>6} {'told':>5}  P(lead >= 2 s) for T = {', '.join(map(str, T_SEEDS))}   "
          "P(control region warns)")  # fmt: skip
    for drift, trend, told in SETTINGS:
        ahead = []
        for T in T_SEEDS:
            hits = 0
            for r in range(args.runs):
                crit = u_of(1 + 0.25 * (T - 3))
                w = follow(np.random.default_rng([1, r]), drift, trend, told, true_sd, crit, ramp=True)
                timely = [k + 1 for k in range(w.size) if w[k] and T - 4 <= k + 1 <= T]
                hits += bool(timely) and T - timely[0] >= 2
            ahead.append(hits / args.runs)
        false = np.mean([follow(np.random.default_rng([2, r]), drift, trend, told, true_sd, u_of(2.6),
                                ramp=False).any() for r in range(args.runs)])  # fmt: skip
        print(f"{drift:6.2f} {trend:6.2f} {told:5.2f}  {'  '.join(f'{a:.2f}' for a in ahead):40} {false:.3f}")


if __name__ == "__main__":
    main()
