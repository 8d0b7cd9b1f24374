"""FIT_DIR/fit.zarr, the record of every ensemble a fit evaluated (layout in fit.py): its format marks,
the checked opener and the ensemble statistics that the fit and its report (fit_report.py) share."""

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
