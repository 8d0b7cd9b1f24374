"""Alert rules on a summary: where a (time, region) variable stays above (or below) a threshold for at
least a given duration. Rules come validated (brainsim.config.schema.ALERT); the summary is read in
blocks of time, so a long summary is never held whole."""

import numpy as np

from brainsim.errors import ConfigError

BLOCK_ROWS = 1 << 16  # rows of the watched variable read at once


def check_regions(rules, labels, where):
    """ConfigError if a rule names a region that is not one of labels; `where`: the rules' key path."""
    known = set(labels)
    for i, rule in enumerate(rules):
        if rule["regions"] == "all":
            continue
        for label in rule["regions"]:
            if label not in known:
                shown = ", ".join(labels[:12]) + (" ..." if len(labels) > 12 else "")
                raise ConfigError(
                    f"{where}[{i}].regions",
                    label,
                    f"a region of the run: {shown}",
                    detail=f"alert rule {rule['name']!r}: unknown region",
                )


def evaluate(ds, rules):
    """Matches of the rules on the summary Dataset ds, in rule order, each region's in time order:
    dicts {rule, variable, region, start, end, peak} (start, end in ms; peak: the extreme value). Samples
    starting before a rule's `after` (ms) are not watched."""
    labels = [str(x) for x in ds["region"].values]
    matches = []
    for rule in rules:
        var = ds[rule["variable"]]
        dim = var.dims[0]
        times = ds[dim].values.astype(float)
        if times.size == 0:
            continue
        step = _step(ds, dim, times)
        columns = (
            list(range(len(labels)))
            if rule["regions"] == "all"
            else [labels.index(label) for label in rule["regions"]]
        )
        above = rule["above"] is not None
        skip = int(np.searchsorted(times, rule.get("after", 0.0) - 1e-9))
        runs = _runs_over_blocks(var[skip:], columns, rule["above"] if above else rule["below"], above)
        for j, (first, end, peak) in runs:
            first, end = first + skip, end + skip
            if (end - first) * step >= rule["for"] - 1e-9:
                matches.append(
                    {
                        "rule": rule["name"],
                        "variable": rule["variable"],
                        "region": labels[columns[j]],
                        "start": float(times[first]),
                        "end": float(times[end - 1] + step),
                        "peak": float(peak),
                    }
                )
    return matches


def _step(ds, dim, times):
    if times.size > 1:
        return float(times[1] - times[0])
    return float({"time": ds.attrs["bin"], "window": ds.attrs["window_ms"], "bold_time": ds.attrs["tr"]}[dim])


def _runs_over_blocks(var, columns, threshold, above):
    """[(column index, (first row, end row, extreme value))] of the runs of rows past the threshold."""
    open_runs = {}  # column -> [first row, extreme value] of a run reaching the end of the last block
    done = []
    n = var.shape[0]
    for first in range(0, n, BLOCK_ROWS):
        block = np.asarray(var[first : first + BLOCK_ROWS].values, dtype=np.float64)[:, columns]
        with np.errstate(invalid="ignore"):
            hit = block > threshold if above else block < threshold
        for j in range(len(columns)):
            carried = open_runs.pop(j, None)
            edges = np.diff(np.r_[0, hit[:, j].astype(np.int8), 0])
            for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
                values = block[s:e, j]
                extreme, run_first = (values.max() if above else values.min()), first + s
                if carried is not None and s == 0:  # the run continues one from the last block
                    run_first = carried[0]
                    extreme = max(extreme, carried[1]) if above else min(extreme, carried[1])
                    carried = None
                if e == block.shape[0] and first + e < n:
                    open_runs[j] = (run_first, extreme)
                else:
                    done.append((j, (run_first, first + e, extreme)))
            if carried is not None:
                done.append((j, (carried[0], first, carried[1])))
    done.sort(key=lambda item: (item[0], item[1][0]))
    return done
