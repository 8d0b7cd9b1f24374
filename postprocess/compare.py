"""Set twin summaries side by side: how each treated run differs from the baseline, region by region, and
which run lies closest to a target (a healthy twin, say; by default the baseline itself, in which case the
ranking orders the treatments by how little they change the baseline).

The paths are [baseline, treated, ...]; every store must be a summary store (``layout``). The regions
compared are those of the baseline that every store has (a patient's twin may lack a resected region).
Features per region, computed nan-safely (``region_features``):

    mean_rate (Hz), cv_isi, synchrony, hypersynchrony and ei_balance (means over windows),
    rel_power_<band> = band_power / (sum of band_power over bands)   (NaN where that sum is 0)

Differences (``Comparison.differences``, one row per run, region and feature; treated minus baseline,
relative difference = difference / |baseline|, NaN where the baseline is 0). For mean_rate the rows also
carry an effect size and a p-value taken from window_rate, the per-window rates being the observations:

    d = (m_T - m_B) / s_p,   s_p = sqrt(((n_T - 1) s_T^2 + (n_B - 1) s_B^2) / (n_T + n_B - 2))

with m the mean and s the sample standard deviation (ddof 1) over a run's windows, n the number of
windows (NaN ignored); d is NaN where either run has fewer than 2 windows or s_p is 0. p is the two-sided
Welch t-test (unequal variances) of the same samples.

Distance of a run to the target (``Comparison.ranking``, ascending: rank 1 is closest). For region r and
feature f, with t the target's features and x the run's,

    z[r, f] = (x[r, f] - t[r, f]) / s_f,   s_f = max(std over regions of t[:, f] (ddof 0, NaN ignored), EPS);
    where that std is 0 or NaN:  s_f = max(|mean over regions of t[:, f]|, EPS)   (a relative difference)
    (EPS keeps a feature that is nearly constant and near 0 in the target, e.g. hypersynchrony, from
    outweighing all others)
    feature_distance = sqrt(mean of z^2 over the (r, f) pairs finite in both)
    fc_distance = 1 - Pearson correlation of the upper triangles (diagonal excluded) of fc_rate, over
                  the pairs finite in both (NaN with fewer than 2 such pairs or a constant triangle)
    distance = feature_distance + fc_weight * fc_distance   (the FC term left out where it is NaN)

A run identical to the target has distance 0.

Futures forked from one state (``compare_futures``: a fork's folder of summaries, FOLDER/<label>.summary.zarr
or FOLDER/member-NNN/<label>.summary.zarr for the forks of a fitted posterior): per member, region and
feature, effect = treated future - untreated future (`none`) of the same member; over members, the median
and the 95 % interval (2.5th and 97.5th percentiles, linear interpolation), also of the mean over the
regions (region "all"). A treatment's score in a member is its mean effect on one feature (--measure)
over chosen regions (--regions, default all); P(A beats B) = the fraction of members where A's score is
strictly higher (--goal higher) or lower (--goal lower) than B's, with `none` scoring 0.
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from brainsim.errors import ConfigError, StoreError
from brainsim.io.run_store import STORE_FAULTS

from .layout import open_summary

VARIABLES = (
    "mean_rate",
    "cv_isi",
    "synchrony",
    "band_power",
    "window_rate",
    "hypersynchrony",
    "ei_balance",
    "fc_rate",
)
EPS = 0.05  # floor of the scale of a feature (feature units: Hz, or 1 for the dimensionless ones)
TOP = 10  # regions listed per treated run by format_comparison


@dataclass
class Comparison:
    """What ``compare`` found: names[0] and paths[0] are the baseline, the rest the treated runs."""

    names: list[str]
    paths: list[Path]
    target_name: str
    target_path: Path
    differences: pd.DataFrame  # run, region, feature, baseline, treated, difference, relative_difference,
    #                            cohen_d, p_value (the last two for mean_rate only)
    ranking: pd.DataFrame  # rank, run, role, path, distance, feature_distance, fc_distance
    files: list[Path] = field(default_factory=list)  # written into ``out``


def compare(paths, *, target=None, out=None, log=print, fc_weight: float = 1.0) -> Comparison:
    """Compare summary stores [baseline, treated, ...] with each other and with ``target`` (a summary store;
    default the baseline); write differences.csv, ranking.csv and ranking.png into ``out`` if given, telling
    ``log`` each file written. ``fc_weight`` scales the FC term of the distance (0 leaves it out)."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ConfigError("stores", len(paths), "a baseline and at least one treated summary store")
    stores = [_read(p) for p in paths]
    target_path = paths[0] if target is None else Path(target)
    target_ds = stores[0] if target is None else _read(target_path)
    named_paths = paths if target is None else paths + [target_path]
    named = stores if target is None else stores + [target_ds]
    common = _common_regions(named, named_paths, log)
    stores = [_select(ds, common) for ds in stores]
    target_ds = _select(target_ds, common)
    named = stores if target is None else stores + [target_ds]

    names = _unique_names(
        [ds.attrs.get("source_name") or _stem(p) for ds, p in zip(named, named_paths)], named_paths
    )
    target_name = names[0] if target is None else names[-1]
    names = names[: len(paths)]
    features = [region_features(ds) for ds in stores]
    differences = pd.concat(
        [
            _differences(n, features[0], f, stores[0], ds)
            for n, f, ds in zip(names[1:], features[1:], stores[1:])
        ],
        ignore_index=True,
    )
    ranking = _ranking(names, paths, features, stores, region_features(target_ds), target_ds, fc_weight)
    comparison = Comparison(names, paths, target_name, target_path, differences, ranking)
    if out is not None:
        comparison.files = write(comparison, out, log=log)
    return comparison


def region_features(ds: xr.Dataset) -> pd.DataFrame:
    """Feature table of one summary: index region, one column per feature (see the module docs)."""
    columns = {
        "mean_rate": ds.mean_rate,
        "cv_isi": ds.cv_isi,
        "synchrony": ds.synchrony,
        "hypersynchrony": ds.hypersynchrony.mean("window"),
        "ei_balance": ds.ei_balance.mean("window"),
    }
    total = ds.band_power.sum("band", min_count=1)
    relative = ds.band_power / total.where(total > 0)
    for band in relative.band.values:
        columns[f"rel_power_{band}"] = relative.sel(band=band)
    index = pd.Index(_labels(ds), name="region")
    return pd.DataFrame(
        {name: np.asarray(value, dtype=float) for name, value in columns.items()}, index=index
    )


def cohen_d(treated: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Cohen's d (pooled SD) per column of two (observation, column) arrays, NaN ignored; NaN where a
    sample has fewer than 2 values or the pooled SD is 0."""
    n_t, n_b = _count(treated), _count(baseline)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        var_t, var_b = np.nanvar(treated, axis=0, ddof=1), np.nanvar(baseline, axis=0, ddof=1)
        pooled = np.sqrt(((n_t - 1) * var_t + (n_b - 1) * var_b) / (n_t + n_b - 2))
        d = (np.nanmean(treated, axis=0) - np.nanmean(baseline, axis=0)) / pooled
    return np.where((n_t >= 2) & (n_b >= 2) & (pooled > 0), d, np.nan)


def welch_p(treated: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Two-sided Welch t-test p-value per column of two (observation, column) arrays, NaN ignored; NaN
    where a sample has fewer than 2 values."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.ttest_ind(treated, baseline, axis=0, equal_var=False, nan_policy="omit").pvalue
    return np.where((_count(treated) >= 2) & (_count(baseline) >= 2), np.asarray(p, dtype=float), np.nan)


def feature_distance(run: pd.DataFrame, target: pd.DataFrame) -> float:
    """Root mean square of the target-scaled feature differences (see the module docs); NaN if no pair."""
    spread = target.std(ddof=0)
    scale = np.maximum(spread, EPS).where(spread > 0, np.maximum(target.mean().abs(), EPS))
    z = ((run - target) / scale).to_numpy()
    z = z[np.isfinite(z)]
    return float(np.sqrt(np.mean(z**2))) if z.size else np.nan


def fc_distance(fc: np.ndarray, target_fc: np.ndarray) -> float:
    """1 - Pearson correlation of the upper triangles of two FC matrices over the pairs finite in both;
    NaN with fewer than 2 pairs or a constant triangle."""
    upper = np.triu_indices_from(fc, k=1)
    a, b = fc[upper], target_fc[upper]
    both = np.isfinite(a) & np.isfinite(b)
    a, b = a[both], b[both]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    return float(max(0.0, 1.0 - np.corrcoef(a, b)[0, 1]))


def write(comparison: Comparison, out, log=print) -> list[Path]:
    """Write differences.csv, ranking.csv and ranking.png into folder ``out``; return their paths."""
    out = Path(out)
    files = [out / "differences.csv", out / "ranking.csv", out / "ranking.png"]
    try:
        out.mkdir(parents=True, exist_ok=True)
        comparison.differences.to_csv(files[0], index=False)
        comparison.ranking.to_csv(files[1], index=False)
        _figure(comparison).savefig(files[2], dpi=120)
    except OSError as e:
        raise StoreError(out, f"cannot write the comparison there ({e.strerror or e})") from None
    for path in files:
        log(f"wrote {path}")
    return files


def format_comparison(comparison: Comparison) -> str:
    """Terminal text: the ranking, then per treated run the regions with the largest |Cohen's d|."""
    ranking = comparison.ranking
    rows = [
        [
            _int(r.rank),
            r.run,
            r.role,
            f"{r.distance:.3f}",
            f"{r.feature_distance:.3f}",
            f"{r.fc_distance:.3f}",
        ]
        for r in ranking.itertuples()
    ]
    lines = [f"Distance to target {comparison.target_name!r} (rank 1 is closest)"]
    lines += _table(["rank", "run", "role", "distance", "features", "fc"], rows, "rllrrr")
    rate = comparison.differences[comparison.differences.feature == "mean_rate"]
    for name in comparison.names[1:]:
        top = rate[rate.run == name].sort_values("cohen_d", key=np.abs, ascending=False, na_position="last")
        rows = [
            [r.region, f"{r.baseline:.2f}", f"{r.treated:.2f}", f"{r.difference:+.2f}", f"{r.cohen_d:+.2f}"]
            for r in top.head(TOP).itertuples()
        ]
        lines += ["", f"{name} vs baseline {comparison.names[0]!r}: regions with the largest |Cohen's d|"]
        lines += _table(["region", "baseline Hz", "treated Hz", "difference Hz", "d"], rows, "lrrrr")
    return "\n".join(lines)


def _read(path: Path) -> xr.Dataset:
    """The compared variables of a summary store, in memory; StoreError if it is not one or is damaged."""
    ds = open_summary(path)
    missing = [name for name in VARIABLES if name not in ds]
    if missing:
        raise StoreError(path, f"summary store lacks {', '.join(missing)}")
    try:
        return ds[list(VARIABLES)].load()
    except STORE_FAULTS as e:
        raise StoreError(path, f"unreadable summary data ({type(e).__name__}: {e})") from None


def _labels(ds: xr.Dataset) -> list[str]:
    return [str(label) for label in ds.region.values]


def _common_regions(stores: list, paths: list, log) -> list[str]:
    """The region labels of the first store that every store has (a patient's twin may lack a resected
    region); logs those left out, StoreError if none is shared."""
    labels = [_labels(ds) for ds in stores]
    common = [label for label in labels[0] if all(label in set(other) for other in labels[1:])]
    if not common:
        raise StoreError(paths[0], f"shares no region label with {', '.join(str(p) for p in paths[1:])}")
    for path, mine in zip(paths, labels):
        left_out = [label for label in mine if label not in common]
        if left_out:
            shown = ", ".join(left_out[:8]) + (" ..." if len(left_out) > 8 else "")
            log(f"compare: {path}: {len(left_out)} region(s) not in every store, left out: {shown}")
    return common


def _select(ds: xr.Dataset, labels: list[str]) -> xr.Dataset:
    if _labels(ds) == labels:
        return ds
    return ds.sel(region=labels, region2=labels)


def _stem(path: Path) -> str:
    return path.resolve().with_suffix("").name


def _unique_names(names: list[str], paths: list[Path]) -> list[str]:
    """Names made unique by appending, where two coincide, the shortest tail of their store paths that tells
    them apart (the store's folder name without .zarr, then its parent, ...)."""
    out = list(names)
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        if len(same) > 1:
            for i, tail in zip(same, _distinct_tails([paths[i] for i in same])):
                out[i] = f"{name} ({tail})"
    return out


def _distinct_tails(paths: list[Path]) -> list[str]:
    parts = [p.resolve().with_suffix("").parts for p in paths]
    for k in range(1, max(map(len, parts)) + 1):
        tails = ["/".join(p[-k:]) for p in parts]
        if len(set(tails)) == len(tails):
            return tails
    return [f"#{i + 1}" for i in range(len(paths))]  # the same store given twice


def _count(samples: np.ndarray) -> np.ndarray:
    return np.sum(~np.isnan(samples), axis=0)


def _differences(name, base: pd.DataFrame, treated: pd.DataFrame, base_ds, treated_ds) -> pd.DataFrame:
    """Tidy rows (run, region, feature) of one treated run against the baseline."""
    treated = treated.reindex(columns=base.columns)
    regions, features = base.index.to_numpy(), base.columns.to_numpy()
    b, t = base.to_numpy().ravel(), treated.to_numpy().ravel()
    with np.errstate(all="ignore"):
        relative = np.where(b != 0, (t - b) / np.abs(b), np.nan)
    table = pd.DataFrame(
        {
            "run": name,
            "region": np.repeat(regions, len(features)),
            "feature": np.tile(features, len(regions)),
            "baseline": b,
            "treated": t,
            "difference": t - b,
            "relative_difference": relative,
            "cohen_d": np.nan,
            "p_value": np.nan,
        }
    )
    samples_t = treated_ds.window_rate.transpose("window", "region").values
    samples_b = base_ds.window_rate.transpose("window", "region").values
    rate = (table.feature == "mean_rate").to_numpy()
    table.loc[rate, "cohen_d"] = cohen_d(samples_t, samples_b)
    table.loc[rate, "p_value"] = welch_p(samples_t, samples_b)
    return table


def _ranking(names, paths, features, stores, target_features, target_ds, fc_weight) -> pd.DataFrame:
    """Runs sorted by distance to the target (NaN last), rank 1 the closest."""
    target_fc = target_ds.fc_rate.values
    table = pd.DataFrame(
        {
            "run": names,
            "role": ["baseline"] + ["treated"] * (len(names) - 1),
            "path": [str(p) for p in paths],
            "feature_distance": [feature_distance(f, target_features) for f in features],
            "fc_distance": [fc_distance(ds.fc_rate.values, target_fc) for ds in stores],
        }
    )
    table["distance"] = table.feature_distance + fc_weight * table.fc_distance.fillna(0.0)
    table["rank"] = table.distance.rank(method="min").astype("Int64")
    columns = ["rank", "run", "role", "path", "distance", "feature_distance", "fc_distance"]
    return table.sort_values("distance", na_position="last", kind="stable")[columns].reset_index(drop=True)


def _figure(comparison: Comparison):
    """Left: distances to the target, best on top; right: region x run heatmap of the mean rate change."""
    from matplotlib.figure import Figure  # renders through Agg without touching pyplot's backend

    ranking = comparison.ranking
    rate = comparison.differences[comparison.differences.feature == "mean_rate"]
    change = rate.pivot(index="region", columns="run", values="difference")
    change = change.reindex(index=rate.region.unique(), columns=comparison.names[1:])
    height = max(4.0, 0.2 * len(change))
    fig = Figure(figsize=(6 + 0.6 * change.shape[1], height), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, max(1.0, 0.25 * change.shape[1])])
    colours = ["tab:gray" if role == "baseline" else "tab:blue" for role in ranking.role]
    left.barh(ranking.run, ranking.distance, color=colours)
    left.invert_yaxis()
    left.set_xlabel(f"distance to {comparison.target_name}")
    left.set_title("closest to target first (grey: baseline)")
    limit = np.nanmax(np.abs(change.to_numpy()), initial=0.0) or 1.0
    image = right.imshow(
        change.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
    )
    right.set_xticks(range(change.shape[1]), change.columns, rotation=45, ha="right")
    right.set_yticks(range(len(change)), change.index, fontsize=min(9, max(4, 400 / max(len(change), 1))))
    right.set_title(f"mean rate change vs {comparison.names[0]}")
    fig.colorbar(image, ax=right, label="treated - baseline (Hz)")
    return fig


def _int(value) -> str:
    return "-" if pd.isna(value) else str(int(value))


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    """Lines of an aligned text table; ``align`` holds one "l" or "r" per column."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = (cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align))
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in rows)]


# -- futures forked from one state (`brainsim fork`) ---------------------------------------------------

UNTREATED = "none"  # the label of the untreated future (brainsim.twin.fork.UNTREATED)
GOALS = ("higher", "lower")
INTERVAL = (2.5, 97.5)  # percentiles over members of the 95 % interval


@dataclass
class FutureComparison:
    """What ``compare_futures`` found: each treatment's effect (treated future minus the untreated one of
    the same member) per member, region and feature; their median and 95 % interval over members; and
    P(row beats column) on the stated measure."""

    folder: Path
    members: list[str]
    treatments: list[str]
    measure: str
    regions: list[str]
    goal: str
    effects: pd.DataFrame  # member, treatment, region, feature, untreated, treated, effect
    intervals: pd.DataFrame  # treatment, region ("all": mean over the regions compared), feature,
    #                          median, low, high, members
    scores: pd.DataFrame  # member, treatment, score: mean effect on `measure` over `regions`
    beats: pd.DataFrame  # P(row beats column), treatments and none on both axes
    files: list[Path] = field(default_factory=list)


def is_fork_folder(path) -> bool:
    """Whether path is a folder of forked futures' summaries (none.summary.zarr in it or in member-*/)."""
    path = Path(path)
    return path.is_dir() and bool(_member_folders(path))


def _member_folders(path: Path) -> list[Path]:
    members = sorted(p for p in path.glob("member-*") if (p / f"{UNTREATED}.summary.zarr").is_dir())
    if members:
        return members
    return [path] if (path / f"{UNTREATED}.summary.zarr").is_dir() else []


def compare_futures(folder, *, measure="mean_rate", regions=None, goal="higher", out=None, log=print):
    """Compare the futures of a fork: FOLDER/<label>.summary.zarr, or FOLDER/member-NNN/<label>.summary.zarr
    for the forks of a fitted posterior (one per member). Each treatment's effect on every compared
    feature (``region_features``) is the treated summary minus the untreated one (`none`) of the same
    member; over members it is reported as the median and the 95 % interval (2.5th to 97.5th
    percentile, linear interpolation). A treatment A beats B in a member when its score — the mean effect
    on `measure` over `regions` (default: every region compared) — is `goal` ("higher" or "lower") than
    B's, strictly; P(A beats B) is the fraction of members where it does (`none` scores 0). Writes
    effects.csv, intervals.csv, scores.csv, beats.csv and effects.png into `out` if given."""
    folder = Path(folder)
    members = _member_folders(folder)
    if not members:
        raise StoreError(
            folder,
            f"no futures' summaries here ({UNTREATED}.summary.zarr, or member-*/{UNTREATED}.summary.zarr): "
            "summarize the stores `brainsim fork` wrote first",
        )
    if goal not in GOALS:
        raise ConfigError("--goal", goal, f"one of {list(GOALS)}")
    labels = [_future_labels(m) for m in members]
    treatments = labels[0]
    for member, mine in zip(members, labels):
        if mine != treatments:
            raise StoreError(member, f"holds the futures {mine}, {members[0]} holds {treatments}")
    if not treatments:
        raise StoreError(members[0], f"holds only the untreated future {UNTREATED!r}: nothing to compare")
    rows, regions_used = [], None
    for member in members:
        paths = [member / f"{label}.summary.zarr" for label in [UNTREATED, *treatments]]
        stores = [_read(p) for p in paths]
        common = _common_regions(stores, paths, log)
        features = [region_features(_select(ds, common)) for ds in stores]
        regions_used = _check_measure(features[0], measure, regions, common, member)
        for label, treated in zip(treatments, features[1:]):
            rows.append(_effects(member.name, label, features[0], treated))
    effects = pd.concat(rows, ignore_index=True)
    intervals = _intervals(effects)
    scores = (
        effects[(effects.feature == measure) & effects.region.isin(regions_used)]
        .groupby(["member", "treatment"], sort=False)
        .effect.mean()
        .rename("score")
        .reset_index()
    )
    beats = _beats(scores, [m.name for m in members], treatments, goal)
    comparison = FutureComparison(
        folder,
        [m.name for m in members],
        treatments,
        measure,
        regions_used,
        goal,
        effects,
        intervals,
        scores,
        beats,
    )
    if out is not None:
        comparison.files = _write_futures(comparison, Path(out), log)
    return comparison


def _future_labels(member: Path) -> list[str]:
    """The treated futures' labels of a member folder (sorted), from its <label>.summary.zarr stores."""
    suffix = ".summary.zarr"
    labels = sorted(p.name[: -len(suffix)] for p in member.glob(f"*{suffix}") if p.is_dir())
    return [label for label in labels if label != UNTREATED]


def _check_measure(features: pd.DataFrame, measure, regions, common, member) -> list[str]:
    """The regions the score averages over, checked with the measure against the compared features."""
    if measure not in features.columns:
        raise ConfigError("--measure", measure, f"one of the compared features {list(features.columns)}")
    if regions is None:
        return list(common)
    unknown = [r for r in regions if r not in common]
    if unknown:
        raise ConfigError("--regions", unknown, f"regions every future of {member} has: {list(common)}")
    return list(regions)


def _effects(member, label, untreated: pd.DataFrame, treated: pd.DataFrame) -> pd.DataFrame:
    """Tidy rows (member, treatment, region, feature) of treated minus untreated."""
    treated = treated.reindex(index=untreated.index, columns=untreated.columns)
    regions, features = untreated.index.to_numpy(), untreated.columns.to_numpy()
    u, t = untreated.to_numpy().ravel(), treated.to_numpy().ravel()
    return pd.DataFrame(
        {
            "member": member,
            "treatment": label,
            "region": np.repeat(regions, len(features)),
            "feature": np.tile(features, len(regions)),
            "untreated": u,
            "treated": t,
            "effect": t - u,
        }
    )


def _intervals(effects: pd.DataFrame) -> pd.DataFrame:
    """Median and 95 % interval over members per treatment, region and feature, and per treatment and
    feature of the mean over regions (region "all"); NaN ignored."""
    overall = effects.groupby(["member", "treatment", "feature"], sort=False).effect.mean().reset_index()
    overall["region"] = "all"
    table = pd.concat([effects[["member", "treatment", "region", "feature", "effect"]], overall])

    def summary(values):
        v = values.to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if not v.size:
            return pd.Series({"median": np.nan, "low": np.nan, "high": np.nan, "members": 0})
        low, high = np.percentile(v, INTERVAL)
        return pd.Series({"median": np.median(v), "low": low, "high": high, "members": v.size})

    out = table.groupby(["treatment", "region", "feature"], sort=False).effect.apply(summary).unstack()
    out["members"] = out["members"].astype(int)
    return out.reset_index()


def _beats(scores: pd.DataFrame, members, treatments, goal) -> pd.DataFrame:
    """P(row beats column): the fraction of members whose row score is strictly `goal` than the column's
    (the untreated future scores 0)."""
    wide = scores.pivot(index="member", columns="treatment", values="score").reindex(
        index=members, columns=treatments
    )
    wide[UNTREATED] = 0.0
    names = [*treatments, UNTREATED]
    values = wide[names].to_numpy()
    better = np.greater if goal == "higher" else np.less
    p = np.array(
        [[np.mean(better(values[:, i], values[:, j])) for j in range(len(names))] for i in range(len(names))]
    )
    return pd.DataFrame(p, index=pd.Index(names, name="beats"), columns=names)


def format_futures(comparison: FutureComparison) -> str:
    """Terminal text: the treatments ranked by their median score, with its interval; each feature's
    region-mean change per treatment (one row per feature); and P(row beats column)."""
    c = comparison
    n = len(c.members)
    where = "every region" if len(c.regions) > 3 else ", ".join(c.regions)
    lines = [
        f"Effects relative to {UNTREATED!r} of the same member, over {n} member(s): median [2.5 %, 97.5 %]",
        f"score: mean change of {c.measure} over {where} ({len(c.regions)} region(s)); {c.goal} is better",
    ]
    ranked = ranked_treatments(c)
    rows = []
    for rank, label in enumerate(ranked, 1):
        s = _finite_scores(c, label)
        low, high = np.percentile(s, INTERVAL) if s.size else (np.nan, np.nan)
        median = np.median(s) if s.size else np.nan
        score, low, high = _signed(median, low, high)
        rows.append([str(rank), label, score, f"[{low}, {high}]"])
    lines += _table(["rank", "treatment", "score", "95 % interval"], rows, "rlrr")
    overall = c.intervals[c.intervals.region == "all"]
    features = list(dict.fromkeys(overall.feature))
    rows = [
        [f]
        + [
            _interval(overall[(overall.treatment == label) & (overall.feature == f)].iloc[0])
            for label in ranked
        ]
        for f in features
    ]
    lines += ["", f"Change of each feature, mean over all {c.effects.region.nunique()} regions compared"]
    lines += _table(["feature", *ranked], rows, "l" + "r" * len(ranked))
    lines += ["", f"P(row beats column): fraction of the {n} member(s) whose score is strictly {c.goal}"]
    names = [*ranked, UNTREATED]
    rows = [[name, *(f"{v:.2f}" for v in c.beats.loc[name, names])] for name in names]
    lines += _table(["", *names], rows, "l" + "r" * len(names))
    return "\n".join(lines)


def ranked_treatments(comparison: FutureComparison) -> list[str]:
    """The treatments from the best median score to the worst (by the goal; no finite score: last)."""
    sign = 1.0 if comparison.goal == "lower" else -1.0

    def key(label):
        s = _finite_scores(comparison, label)
        return (0, sign * float(np.median(s))) if s.size else (1, 0.0)

    return sorted(comparison.treatments, key=key)


def _finite_scores(comparison: FutureComparison, label) -> np.ndarray:
    s = comparison.scores[comparison.scores.treatment == label].score.to_numpy(dtype=float)
    return s[np.isfinite(s)]


def _interval(row) -> str:
    median, low, high = _signed(row["median"], row["low"], row["high"])
    return f"{median} [{low}, {high}]"


def _signed(*values) -> list[str]:
    """Signed numbers to as many decimals as the largest of them allows: 3 below 10, 1 below 1000, else 3
    significant digits (NaN as nan)."""
    finite = [abs(v) for v in values if np.isfinite(v)]
    size = max(finite, default=0.0)
    spec = "+.3f" if size < 10 else "+.1f" if size < 1000 else "+.3g"
    return [format(v, spec) for v in values]


def _write_futures(comparison: FutureComparison, out: Path, log) -> list[Path]:
    """effects.csv, intervals.csv, scores.csv, beats.csv and effects.png into folder `out`."""
    files = [
        out / name for name in ("effects.csv", "intervals.csv", "scores.csv", "beats.csv", "effects.png")
    ]
    try:
        out.mkdir(parents=True, exist_ok=True)
        comparison.effects.to_csv(files[0], index=False)
        comparison.intervals.to_csv(files[1], index=False)
        comparison.scores.to_csv(files[2], index=False)
        comparison.beats.to_csv(files[3])
        _futures_figure(comparison).savefig(files[4], dpi=120)
    except OSError as e:
        raise StoreError(out, f"cannot write the comparison there ({e.strerror or e})") from None
    for path in files:
        log(f"wrote {path}")
    return files


def _futures_figure(comparison: FutureComparison):
    """Each treatment's score over members, best first: the members as dots, the median and 95 % interval
    as a bar."""
    from matplotlib.figure import Figure

    c = comparison
    ranked = ranked_treatments(c)
    fig = Figure(figsize=(6.4, 1.6 + 0.5 * len(ranked)), layout="constrained")
    ax = fig.subplots()
    for y, label in enumerate(ranked):
        s = _finite_scores(c, label)
        if s.size:
            low, high = np.percentile(s, INTERVAL)
            ax.plot([low, high], [y, y], color="tab:blue", linewidth=3, solid_capstyle="butt")
            ax.plot(np.median(s), y, "o", color="black")
            ax.plot(s, np.full(s.size, y + 0.2), ".", color="tab:gray")
    ax.axvline(0.0, color="tab:red", linewidth=1)
    ax.set_yticks(range(len(ranked)), ranked)
    ax.invert_yaxis()
    where = "every region" if len(c.regions) > 3 else ", ".join(c.regions)
    unit = " (Hz)" if c.measure.startswith("mean_rate") else ""
    ax.set_title(
        f"{len(c.members)} members, best first ({c.goal} is better): median, 95 % interval, members",
        fontsize="medium",
    )
    ax.set_xlabel(f"change of {c.measure}{unit} vs {UNTREATED}, mean over {where}")
    return fig
