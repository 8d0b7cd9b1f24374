"""FIT_DIR/fit.zarr, the record of every ensemble a fit evaluated (layout in fit.py): its format marks,
the checked opener and the ensemble statistics that the fit and its report (fit_report.py) share; and
the checked reader of FIT_DIR/fit.json, the fit's summary record (fork, follow, report, plan read it)."""

import json
from pathlib import Path

import numpy as np
import xarray as xr

from brainsim.errors import StoreError

FORMAT = "brainsim-fit"
FORMAT_VERSION = 1
VARIABLES = ("theta", "features", "misfit", "step", "seed", "observed", "noise")


def open_fit(store):
    """The fit store at `store`, loaded; StoreError naming it when it is unreadable, not a brainsim fit
    store of this version, or lacks one of VARIABLES."""
    try:
        ds = xr.open_zarr(store, zarr_format=3).load()
    except Exception as e:  # noqa: BLE001 - any unreadable store is named
        raise StoreError(store, f"unreadable fit store ({type(e).__name__}: {e})") from None
    if ds.attrs.get("format") != FORMAT or ds.attrs.get("format_version") != FORMAT_VERSION:
        raise StoreError(store, f"not a brainsim fit store ({FORMAT!r} version {FORMAT_VERSION})")
    missing = [name for name in VARIABLES if name not in ds]
    if missing:
        raise StoreError(store, f"a fit store without {missing}: it was not written whole")
    return ds


RECORD_KEYS = {
    "method": (dict, "the fit's method"),
    "config": (str, "the fitted config file"),
    "parameters_file": (str, "the fit file"),
}


def read_record(path, needs=()):
    """fit.json's content; StoreError naming the file when it is unreadable, not a JSON object, lacks one
    of the RECORD_KEYS `needs`, or has a "set" that is not a list of KEY.PATH=VALUE items."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise StoreError(path, f"unreadable fit record ({type(e).__name__}: {e})") from None
    if not isinstance(record, dict):
        raise StoreError(path, "not a fit's record (not a JSON object)")
    for key in needs:
        kind, what = RECORD_KEYS[key]
        if not isinstance(record.get(key), kind):
            raise StoreError(path, f'no "{key}" ({what}) in the fit\'s record')
    fitted = record.get("set", [])
    if not isinstance(fitted, list) or not all(isinstance(item, str) for item in fitted):
        raise StoreError(path, f'"set" (the fit\'s --set items) is not a list of KEY.PATH=VALUE: {fitted!r}')
    return record


def ensemble_summary(names, theta):
    """{name: mean, sd, q2.5, q97.5} of the ensemble theta (members, parameters)."""
    return {
        name: {
            "mean": float(theta[:, i].mean()),
            "sd": float(theta[:, i].std(ddof=1)),
            "q2.5": float(np.percentile(theta[:, i], 2.5)),
            "q97.5": float(np.percentile(theta[:, i], 97.5)),
        }
        for i, name in enumerate(names)
    }
