"""Spike exchange between ranks: counts by Allgather, then the spikes packed in one Allgatherv.

The buffer (uppercase) calls avoid pickling; a structured dtype is not mapped by mpi4py, so the
packed (time, gid) records travel as bytes. The count message also carries each rank's flags, so that
every rank learns at the same epoch whether any rank failed or was asked to stop.
"""

import numpy as np

SPIKE = np.dtype([("time", np.float64), ("gid", np.int64)])

FAILED, STOP, FLUSH = 1, 2, 4
"""Flags a rank raises in the exchange: its epoch failed; a stop was requested; the outputs are due."""


def exchange_spikes(context, gid, time, flags=0):
    """All ranks' spikes of this epoch, on every rank, sorted by (time, gid); and the flags of every rank
    (an int array, one entry per rank)."""
    if context.size == 1:
        order = np.lexsort((gid, time))
        return gid[order], time[order], np.array([flags])
    from mpi4py import MPI

    local = np.empty(gid.size, dtype=SPIKE)
    local["gid"], local["time"] = gid, time
    header = np.zeros((context.size, 2), dtype=np.int64)
    context.comm.Allgather([np.array([gid.size, flags], dtype=np.int64), MPI.INT64_T], [header, MPI.INT64_T])
    counts = header[:, 0]
    everything = np.empty(int(counts.sum()), dtype=SPIKE)
    nbytes = counts * SPIKE.itemsize
    displs = np.concatenate([[0], np.cumsum(nbytes)[:-1]])
    context.comm.Allgatherv(
        [local.view(np.uint8), MPI.BYTE], [everything.view(np.uint8), (nbytes, displs), MPI.BYTE]
    )
    everything.sort(order=("time", "gid"))
    return everything["gid"].copy(), everything["time"].copy(), header[:, 1]
