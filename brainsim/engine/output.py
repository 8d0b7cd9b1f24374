"""The run's Zarr store as every rank sees it.

Rank 0 creates the store, appends the spikes (after the exchange every rank holds all of them, in order)
and writes the attributes. Every rank writes the trace columns of its own probes: probes are ordered by
gid, ranks own contiguous blocks of gids, so a rank's columns are one contiguous block, and the probe
chunks are chosen so that no chunk straddles two ranks. The store therefore reads the same whatever the
number of ranks. Writes are buffered in memory and flushed collectively; at each flush the completed rows
of the region summaries are summed over the ranks and rank 0 writes them.
"""

import numpy as np

from ..io.zarr_store import RunStore, probe_chunk_for
from ..parallel.context import agree
from .group import units_of


class Output:
    def __init__(
        self,
        context,
        path,
        *,
        config,
        counts,
        probes,
        sampling,
        tstop,
        overwrite,
        resume_from=None,
        regions=None,
        provenance=None,
        populations=None,
    ):
        """probes: this rank's ProbeSets; sampling: {probe name: interval ms}; resume_from: the time (ms)
        a resumed run continues from (the store at path is reopened), or None for a new store; regions:
        the run's RegionRecorder (runs with a brain), whose rows are written at every flush; provenance:
        the store's provenance attribute; populations: the recipe's population table."""
        self.context, self.regions = context, regions
        layout = context.comm.allgather(
            {p.name: (p.gid, p.compartment, p.location) for p in probes}  # small: once, at start-up
        )
        self.first_probe, probe_offsets = {}, {}
        error, store = None, None
        try:
            if context.is_root:
                store = (
                    RunStore.resume(path, config.hash(), resume_from)
                    if resume_from is not None
                    else RunStore.create(
                        path,
                        config=config.data,
                        config_hash=config.hash(),
                        counts=counts,
                        overwrite=overwrite,
                        provenance=provenance,
                        populations=populations,
                    )
                )
            for probe in config["probes"]:
                name = probe["name"]
                parts = [rank_layout.get(name) for rank_layout in layout]
                sizes = [0 if part is None else part[0].size for part in parts]
                offsets = np.concatenate([[0], np.cumsum(sizes)])
                if offsets[-1] == 0:
                    continue
                self.first_probe[name] = int(offsets[context.rank])
                probe_offsets[name] = offsets
                if context.is_root and resume_from is None:
                    n_rows = int(np.floor(tstop / sampling[name] + 1e-9)) + 1
                    store.add_trace_set(
                        name,
                        variable=probe["variable"],
                        units=units_of(probe["variable"]),
                        times=np.arange(n_rows) * sampling[name],
                        gid=np.concatenate([part[0] for part in parts if part is not None]),
                        compartment=np.concatenate([part[1] for part in parts if part is not None]),
                        location=[loc for part in parts if part is not None for loc in part[2]],
                        probe_chunk=probe_chunk_for(offsets) if context.size > 1 else None,
                    )
            if context.is_root and resume_from is None and regions is not None:
                store.add_regions(
                    bin_ms=regions.bin,
                    n_bins=regions.n_bins,
                    labels=regions.labels,
                    hemisphere=regions.hemisphere,
                    centres=regions.centres,
                    n_cells=regions.n_cells,
                )
            if store is not None:
                store.publish(resume_from or 0.0)
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(context, error)
        self.store = store
        self._collective(lambda: None if context.is_root else setattr(self, "store", RunStore.attach(path)))
        # A resumed store keeps the chunks of the run that created it: where they do not fit this run's
        # ranks, the trace set's samples go to rank 0 to be written (never two writers in one chunk).
        self.gathered = {
            name
            for name, offsets in probe_offsets.items()
            if context.size > 1 and any(o % self.store.probe_chunk(name) for o in offsets)
        }
        self._held = []  # (name, row, values, first probe) of gathered trace sets, until the next flush

    def write_epoch(self, gid, time, samples):
        """Buffer one epoch's outputs: the (global) spikes on rank 0, this rank's samples everywhere."""
        if self.context.is_root and gid.size:
            self.store.append_spikes(gid, time)
        for name, (row, values) in samples.items():
            if name in self.gathered:
                self._held.append((name, row, values, self.first_probe[name]))
            else:
                self.store.write_samples(name, row, values, self.first_probe[name])

    def _write(self):
        """Every rank writes its buffers; samples held for rank 0 reach it first."""
        if self.gathered:
            held = self.context.comm.gather(self._held, root=0)
            self._held = []
            if self.context.is_root:
                for name, row, values, first in (block for blocks in held for block in blocks):
                    self.store.write_samples(name, row, values, first)
        rows = self.regions.reduce(self.context.comm) if self.regions is not None else None
        if rows is not None:
            self.store.write_regions(*rows)
        self.store.flush()

    def flush(self, t_reached):
        """Collective: every rank writes what it buffered; then rank 0 records t_reached (ms)."""
        self._collective(self._write)
        self._collective(lambda: self.store.publish(t_reached) if self.context.is_root else None)

    def finish(self, status, *, error=None, timing=None, t_reached=None):
        """Collective: flush everywhere, then rank 0 records the outcome."""
        self._collective(self._write)
        self._collective(
            lambda: (
                self.store.finish(status, error=error, timing=timing, t_reached=t_reached)
                if self.context.is_root
                else None
            )
        )

    def _collective(self, step):
        error = None
        try:
            step()
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(self.context, error)
