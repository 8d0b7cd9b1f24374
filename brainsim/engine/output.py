"""The run's Zarr store as every rank sees it.

Rank 0 creates the store, appends the spikes (after the exchange every rank holds all of them, in order)
and writes the attributes. Every rank writes the trace columns of its own probes: probes are ordered by
gid, ranks own contiguous blocks of gids, so a rank's columns are one contiguous block, and the probe
chunks are chosen so that no chunk straddles two ranks. The store therefore reads the same whatever the
number of ranks. Writes are buffered in memory and flushed collectively; at each flush the completed rows
of the region summaries are summed over the ranks and rank 0 writes them. A run with a SONATA spike report
has rank 0 write it from the store's spikes once the store is complete.
"""

from ..files import writing
from ..io.run_store import RunStore
from ..io.sonata import check_report, discard_report, report_path, write_spike_report
from ..io.zarr_store import RunWriter, probe_chunk_for
from ..parallel.context import agree


class Output:
    def __init__(
        self,
        context,
        path,
        spec,
        *,
        overwrite=False,
        resume_from=None,
        regions=None,
        heartbeat=None,
        sonata=False,
    ):
        """spec: the simulation's StoreSpec; resume_from: the time (ms) a resumed run continues from (the
        store at path is reopened), or None for a new store; regions: the run's RegionRecorder (runs with
        a brain), whose completed rows are written at every flush; heartbeat: s between the store's
        heartbeats while it runs (None: only at each flush); sonata: write the SONATA spike report beside
        the store (report_path) when the run completes. A replaced or resumed store discards a report
        there (it would be stale) either way."""
        self.context, self.regions, self.heartbeat, self.path = context, regions, heartbeat, path
        self.sonata, self.report = sonata, report_path(path)
        self.first_probe = {t.name: int(t.offsets[context.rank]) for t in spec.trace_sets}
        # A fork's store starts at its fork time: rows of the run's grids (from t = 0) are moved by these.
        self.first_row = {t.name: t.first_row for t in spec.trace_sets}
        self.first_bin = 0 if spec.regions is None else spec.regions.first_bin
        error, store = None, None
        try:
            if context.is_root:
                with writing(path, "the run store"):
                    store = self._open(path, spec, overwrite, resume_from)
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(context, error)
        self.store = store
        self._collective(lambda: None if context.is_root else setattr(self, "store", RunWriter.attach(path)))
        # A resumed store keeps the chunks of the run that created it: where they do not fit this run's
        # ranks, the trace set's samples go to rank 0 to be written (never two writers in one chunk).
        self.gathered = {
            t.name
            for t in spec.trace_sets
            if context.size > 1 and any(o % self.store.probe_chunk(t.name) for o in t.offsets)
        }
        self._held = []  # (name, row, values, first probe) of gathered trace sets, until the next flush

    def _open(self, path, spec, overwrite, resume_from):
        """Rank 0: the store, created from the spec or reopened to continue at resume_from; the report
        beside a store replaced or continued is discarded (a new one is written at the end)."""
        replacing = overwrite or resume_from is not None
        if self.sonata:
            check_report(self.report, replacing)
        store = self._open_store(path, spec, overwrite, resume_from)
        if replacing:
            discard_report(self.report)
        return store

    def _open_store(self, path, spec, overwrite, resume_from):
        if resume_from is not None:
            store = RunWriter.resume(
                path,
                spec.config_hash,
                resume_from,
                config=spec.config,
                times={t.name: t.times for t in spec.trace_sets},
                region_bins=None if spec.regions is None else spec.regions.n_bins,
                heartbeat=self.heartbeat,
            )
            store.publish(resume_from)
            return store
        store = RunWriter.create(
            path,
            config=spec.config,
            config_hash=spec.config_hash,
            counts=spec.counts,
            overwrite=overwrite,
            provenance=spec.provenance,
            populations=spec.populations,
            heartbeat=self.heartbeat,
            fork=spec.fork,
        )
        multi = self.context.size > 1
        for t in spec.trace_sets:
            store.add_trace_set(
                t.name,
                variable=t.variable,
                units=t.units,
                times=t.times,
                gid=t.gid,
                compartment=t.compartment,
                location=list(t.location),
                probe_chunk=probe_chunk_for(t.offsets) if multi else None,
            )
        r = spec.regions
        if r is not None:
            store.add_regions(
                bin_ms=r.bin,
                n_bins=r.n_bins,
                labels=list(r.labels),
                hemisphere=list(r.hemisphere),
                centres=r.centres,
                n_cells=r.n_cells,
                sc_weights=r.sc_weights,
                sc_tract_lengths=r.sc_tract_lengths,
                first_bin=r.first_bin,
            )
        store.publish(0.0 if spec.fork is None else spec.fork["fork_time"])
        return store

    def write_epoch(self, gid, time, samples):
        """Buffer one epoch's outputs: the (global) spikes on rank 0, this rank's samples everywhere."""
        with writing(self.path, "the run store"):  # buffers past a size are written at once
            self._buffer(gid, time, samples)

    def _buffer(self, gid, time, samples):
        if self.context.is_root and gid.size:
            self.store.append_spikes(gid, time)
        for name, (row, values) in samples.items():
            row -= self.first_row[name]
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
            first, rate, v_mean = rows
            self.store.write_regions(first - self.first_bin, rate, v_mean)
        self.store.flush()

    def flush(self, t_reached):
        """Collective: every rank writes what it buffered; then rank 0 records t_reached (ms)."""
        self._collective(self._write)
        self._collective(lambda: self.store.publish(t_reached) if self.context.is_root else None)

    def finish(self, status, *, error=None, timing=None, t_reached=None):
        """Collective: flush everywhere, then rank 0 records the outcome; then a complete run's SONATA spike
        report is written (a failure to write it leaves the store complete)."""
        self._collective(self._write)
        self._collective(
            lambda: (
                self.store.finish(status, error=error, timing=timing, t_reached=t_reached)
                if self.context.is_root
                else None
            )
        )
        if self.sonata and status == "complete":
            self._collective(
                lambda: (
                    write_spike_report(self.report, RunStore.open(self.path))
                    if self.context.is_root
                    else None
                )
            )

    def mark(self, status, error):
        """Rank 0 records the outcome without writing outputs (after writing them failed); not collective,
        and quiet: when even this fails, the store's heartbeat stops and readers see it stale."""
        if self.context.is_root:
            try:
                self.store.mark(status, error)
            except Exception:  # noqa: BLE001, S110 - the run's own failure is the one to report
                pass

    def close(self):
        """Stop this process's heartbeat of the store (whatever state the run ended in)."""
        if self.store is not None:
            self.store.close()

    def _collective(self, step):
        error = None
        try:
            with writing(self.path, "the run store"):
                step()
        except Exception as e:  # noqa: BLE001 - every rank must learn of it (agree)
            error = e
        agree(self.context, error)
