"""Features: the numbers a fit matches, computed by one code path from a simulated twin's summary store
and from a patient's observation store alike (both hold the summary layout, postprocess.layout).

A feature (a `features` item of the fit file) is a variable of the dataset — or, with a `window`, the
same variable computed from its time series inside [t0, t1) ms with the summary's own functions
(postprocess.signals) — normalised over a dimension if asked, restricted to the `select`ed labels, and
transformed (log). Its values are flattened in the dataset's dimension order, each labelled
`variable[label,...]` (with `@t0-t1` for a window).
"""

import numpy as np
import xarray as xr

from brainsim.errors import ConfigError
from brainsim.postprocess.layout import BANDS
from brainsim.postprocess.signals import band_power, frequencies, spectral_peaks, spectrum


def _mean_rate(x, bin_ms):
    return x.mean(axis=0)


def _band_power(x, bin_ms):
    return band_power(x, bin_ms).T


def _peak(x, bin_ms):
    return spectral_peaks(frequencies(x.shape[0], bin_ms), spectrum(x, bin_ms).mean(axis=1, keepdims=True))[0]


# variable → (its time series, function of (time, n) samples and bin ms, dims of the result besides n)
WINDOWED = {
    "mean_rate": ("rate", _mean_rate, ()),
    "band_power": ("signal", _band_power, ("band",)),
    "band_power_eeg": ("eeg", _band_power, ("band",)),
    "spectrum": ("signal", spectrum, ("frequency",)),
    "spectrum_eeg": ("eeg", spectrum, ("frequency",)),
    "eeg_peak_frequency": ("eeg", _peak, None),
}


def feature_vector(ds, features):
    """(values (n,) float64, labels [str]) of the features (resolved fit-file items) of ds, a summary or an
    observation Dataset."""
    blocks = feature_blocks(ds, features)
    if not blocks:
        return np.zeros(0), []
    return np.concatenate([b[0] for b in blocks]), [label for b in blocks for label in b[1]]


def feature_blocks(ds, features):
    """[(values, labels)] per feature, as feature_vector."""
    return [_block(ds, feature, f"features[{i}]") for i, feature in enumerate(features)]


def variables_of(features):
    """The names of the summary variables the features (fit-file items) are computed from, in order."""
    names = [
        WINDOWED.get(f["variable"], (f["variable"],))[0] if f["window"] is not None else f["variable"]
        for f in features
    ]
    return list(dict.fromkeys(names))


def value_regions(ds, features):
    """Per feature value, in feature_vector's order: the frozenset of region labels it belongs to (its labels
    along region and region2), or None for a value of no region (an EEG electrode's, a global one's)."""
    out = []
    for i, feature in enumerate(features):
        values = _values(ds, feature, f"features[{i}]")
        dims = [d for d in ("region", "region2") if d in values.dims]
        if not dims:
            out += [None] * values.size
            continue
        labels = [[str(v) for v in values[d].values] for d in dims]
        axes = [values.dims.index(d) for d in dims]
        for flat in range(values.size):
            index = np.unravel_index(flat, values.shape)
            out.append(frozenset(names[index[a]] for names, a in zip(labels, axes)))
    return out


PINNED = ("region", "region2", "electrode")
"""Dimensions whose labels a fit takes from the observations (a recording may hold fewer of them)."""


def pin(ds, features):
    """The features with the labels of ds (the observations) along PINNED dimensions added to their
    `select`s, so that every member's summary gives the same values in the same order."""
    out = []
    for i, feature in enumerate(features):
        values = _values(ds, feature, f"features[{i}]")
        select = dict(feature["select"])
        for dim in PINNED:
            if dim in values.dims and dim not in select:
                select[dim] = [str(v) for v in values[dim].values]
        out.append({**feature, "select": select})
    return out


def _block(ds, feature, where):
    values = _values(ds, feature, where)
    data = values.values.reshape(-1)
    if feature["transform"] == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.log(data)
    suffix = "" if feature["window"] is None else "@{:g}-{:g}".format(*feature["window"])
    return data, _labels(values, feature["variable"], suffix)


def _values(ds, feature, where):
    """The feature's values as a DataArray: computed, normalised and selected, not yet transformed."""
    name = feature["variable"]
    values = _windowed(ds, feature, where) if feature["window"] is not None else _stored(ds, name, where)
    values = values.astype(np.float64)
    if feature["normalise"] is not None:
        dim = feature["normalise"]
        if dim not in values.dims:
            raise ConfigError(f"{where}.normalise", dim, f"a dimension of {name}: {list(values.dims)}")
        values = values / values.sum(dim)
    for dim, labels in feature["select"].items():
        if dim not in values.dims:
            raise ConfigError(f"{where}.select.{dim}", labels, f"a dimension of {name}: {list(values.dims)}")
        known = [str(v) for v in values[dim].values]
        missing = [label for label in labels if label not in known]
        if missing:
            raise ConfigError(
                f"{where}.select.{dim}", missing, f"labels of {dim} in the data: {known}", detail="not there"
            )
        values = values.isel({dim: [known.index(label) for label in labels]})
    return values


def _stored(ds, name, where):
    if name not in ds.data_vars:
        raise ConfigError(f"{where}.variable", name, f"a variable of the data: {sorted(ds.data_vars)}")
    return ds[name].load()


def _windowed(ds, feature, where):
    name = feature["variable"]
    if name not in WINDOWED:
        raise ConfigError(
            f"{where}.variable", name, f"with a window, one of {sorted(WINDOWED)} (or no window)"
        )
    series, function, dims = WINDOWED[name]
    if series not in ds.data_vars:
        raise ConfigError(
            f"{where}.variable", name, f"a variable whose time series ({series}) the data holds",
            detail=f"it holds {sorted(ds.data_vars)}",
        )  # fmt: skip
    x = ds[series]
    bin_ms = float(ds.attrs["bin"])
    t0, t1 = feature["window"]
    end = float(x["time"].values[-1]) + bin_ms if x.sizes["time"] else 0.0
    if t1 > end + 1e-6 * bin_ms:
        raise ConfigError(
            f"{where}.window", feature["window"], f"a window inside the record (0 to {end:g} ms)"
        )
    inside = (x["time"].values >= t0 - 1e-9) & (x["time"].values + bin_ms <= t1 + 1e-6 * bin_ms)
    column = x.dims[1]
    samples = np.nan_to_num(np.asarray(x.isel(time=inside).values, dtype=np.float64))
    result = np.asarray(function(samples, bin_ms))
    if dims is None:
        return xr.DataArray(result)
    coords = {column: x[column].values}
    if dims == ("band",):
        coords["band"] = list(BANDS)
    elif dims == ("frequency",):
        coords["frequency"] = frequencies(samples.shape[0], bin_ms)
        return xr.DataArray(result, dims=("frequency", column), coords=coords)
    return xr.DataArray(result, dims=(column, *dims), coords=coords)


def _labels(values, name, suffix):
    if not values.dims:
        return [f"{name}{suffix}"]
    axes = [
        [f"{v:g}" if isinstance(v, float) else str(v) for v in values[dim].values.tolist()]
        if dim in values.coords
        else [str(k) for k in range(values.sizes[dim])]
        for dim in values.dims
    ]
    grid = np.array(np.meshgrid(*[np.arange(len(a)) for a in axes], indexing="ij")).reshape(len(axes), -1).T
    return [f"{name}[{','.join(axes[d][k] for d, k in enumerate(index))}]{suffix}" for index in grid]
