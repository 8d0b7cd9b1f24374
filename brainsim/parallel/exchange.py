"""Spike exchange between ranks: counts by Allgather, then the spikes packed in one Allgatherv.

The buffer (uppercase) calls avoid pickling; a structured dtype is not mapped by mpi4py, so the
packed (gid, time) records travel as bytes.
"""

import numpy as np

SPIKE = np.dtype([("time", np.float64), ("gid", np.int64)])


def exchange_spikes(context, gid, time):
    """All ranks' spikes of this epoch, on every rank, sorted by (time, gid)."""
    if context.size == 1:
        order = np.lexsort((gid, time))
        return gid[order], time[order]
    from mpi4py import MPI

    local = np.empty(gid.size, dtype=SPIKE)
    local["gid"], local["time"] = gid, time
    counts = np.zeros(context.size, dtype=np.int64)
    context.comm.Allgather([np.array([gid.size], dtype=np.int64), MPI.INT64_T], [counts, MPI.INT64_T])
    everything = np.empty(int(counts.sum()), dtype=SPIKE)
    nbytes = counts * SPIKE.itemsize
    displs = np.concatenate([[0], np.cumsum(nbytes)[:-1]])
    context.comm.Allgatherv(
        [local.view(np.uint8), MPI.BYTE], [everything.view(np.uint8), (nbytes, displs), MPI.BYTE]
    )
    everything.sort(order=("time", "gid"))
    return everything["gid"].copy(), everything["time"].copy()
