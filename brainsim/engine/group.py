"""Lowering: the cells of one rank as one flat structure-of-arrays (see kernels/LAYOUT.md).

The unknowns of all local cells form one vector u = [V of every node | every mechanism state]. Nodes are
numbered parent-before-child, the cells of a chunk (CHUNK_NODES) on consecutive nodes; the states of one
mechanism form a block of n_states rows × n_instances, blocks in the order of the config's mechanisms
(config.mechanisms: the catalogue's, with loaded NMODL modules placed so that writers of an ion row run
before its readers).
"""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..kernels import stimuli
from ..kernels.cable import axial_sum, solver_order
from ..kernels.ions import CAI, CAI_REST, ECA, ECA_DEFAULT, ION_FIELDS, nernst_eca

CHUNK_NODES = 4096
"""Nodes of a chunk (consecutive cells) at most; a bigger cell is a chunk of its own. The staggered step takes
a chunk through all the steps of a segment before the next chunk, so that its arrays stay in the core's L2
cache (0.5–1.2 MB per chunk on M2 and the L5PC) instead of streaming the whole group through it at every
step. Measured on an Intel Xeon (2 MB L2): M2, 256 cells, 8.2 → 4.7 ns per compartment-step at 2048–4096
and 5.4 at 8192; 32 L5PCs 22.4 → 20.0 at 2048, 18.9 at 4096."""


@dataclass
class Block:
    """All instances of one mechanism among the local cells."""

    name: str
    module: object
    node: np.ndarray  # int32, group node of each instance
    params: np.ndarray  # (n_params, n) float64
    offset: int  # index of the block's first state in u
    vi: np.ndarray = field(repr=False, default=None)  # V per instance, gathered for the rate kernel

    def __post_init__(self):
        self.n = self.node.size
        self.n_states = len(self.module.STATES)
        self.size = self.n_states * self.n
        first = np.flatnonzero(np.diff(self.node, prepend=self.node[:1] - 2) != 1)
        length = np.diff(np.append(first, self.n))
        self.runs = np.stack([first, self.node[first], length], axis=1).astype(np.int64)
        """(first instance, its node, length) of each run of instances at consecutive nodes."""


@dataclass(frozen=True)
class ProbeSet:
    """The recorded unknowns of one probe entry on this rank."""

    name: str
    variable: str
    units: str
    index: np.ndarray  # int64 indices into u
    gid: np.ndarray
    compartment: np.ndarray  # node index within its cell
    location: tuple  # labels such as 'soma[0](0.5)'


class CellGroup:
    """The local cells lowered to flat arrays, with the evaluation of currents and rates on them."""

    def __init__(self, recipe, gids):
        self.gids = np.asarray(gids, dtype=np.int64)
        self.celsius = recipe.config["simulation"]["celsius"]
        types = [recipe.cell_type_of(int(g)) for g in self.gids]
        sizes = [t.geometry.n_nodes for t in types]
        self.cell_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        """Where each cell starts when the cells' nodes are laid end to end (the 'cell-by-cell' numbering)."""
        self.n_nodes = n = int(self.cell_start[-1])
        cat = lambda name, dtype=float: _concat([getattr(t.geometry, name) for t in types], dtype)  # noqa: E731
        parent = _concat(
            [
                np.where(t.geometry.parent >= 0, t.geometry.parent + s, -1)
                for t, s in zip(types, self.cell_start)
            ],
            np.int64,
        )
        # Group nodes are numbered in the tree solve's elimination order (kernels.cable.solver_order): chunk
        # of cells after chunk (CHUNK_NODES); in a chunk, each cell re-rooted at its centre and the
        # chunk's nodes by depth, so the solve's chains overlap and no kernel needs an indirection; at one
        # depth, nodes with the same density mechanisms are next to each other, so that each mechanism's
        # nodes form runs (its current kernel vectorises over them). order[i] is the cell-by-cell index of
        # group node i.
        kind = _mechanism_sets(types, self.cell_start, recipe.config.mechanisms)
        self.chunk_cells = cell_chunks(sizes, CHUNK_NODES)
        """Cell index where each chunk of cells starts, and the number of cells last."""
        self.chunk_nodes = self.cell_start[self.chunk_cells]
        """Group node where each chunk starts (its nodes are consecutive), and n_nodes last."""
        chunk = np.repeat(np.arange(self.chunk_cells.size - 1), np.diff(self.chunk_nodes))
        self.order, self.parent, self.gax = solver_order(parent, cat("gax"), self.cell_start, kind, chunk)
        self.position = np.empty(n, dtype=np.int64)
        self.position[self.order] = np.arange(n)
        """Group node of each cell-by-cell index (the inverse of order)."""
        self.area, self.cap = cat("area")[self.order], cat("cap")[self.order]
        self.is_junction = cat("is_junction", bool)[self.order]
        self.v_init = _concat([np.full(t.geometry.n_nodes, t.v_init) for t in types])[self.order]
        self.dax = np.empty(n)
        axial_sum(self.gax, self.parent, self.dax)
        self.n_compartments = int(np.count_nonzero(~self.is_junction))

        self.blocks = self._blocks(types, recipe.config.mechanisms)
        self.n_states = sum(b.size for b in self.blocks)
        self.size = n + self.n_states

        # One array holds the four current accumulators and the ion rows, so that everything reset at
        # each evaluation (the accumulators and the summed ion currents, rows 0..4) is one contiguous fill.
        self._work = np.zeros((4 + len(ION_FIELDS), n))
        self.i_dens, self.g_dens, self.i_pt, self.g_pt = self._work[:4]
        self.ion = self._work[4:]
        self.ion[CAI] = CAI_REST
        self._reset_rows = self._work[: 4 + CAI]
        self._reset = self._reset_rows.reshape(-1)
        self._calcium_reversal()
        self.rate_blocks = [b for b in self.blocks if b.n_states]
        self.inst_node = np.concatenate([b.node for b in self.rate_blocks] or [np.zeros(0)]).astype(np.intp)
        """Node of every instance of a mechanism with states, block after block: V is gathered for all rate
        kernels at once."""
        self.vi = np.zeros(self.inst_node.size)
        writers = [b for b in self.rate_blocks if "cai" in b.module.ION_WRITES]
        others = [b for b in self.rate_blocks if b not in writers]
        self.state_phases = [writers, others] if writers else [others]
        """The staggered step's state update (engine.stepper), in NEURON's order where a mechanism writes
        cai: its states first and the new cai into the ion row, then every other mechanism's, whose rates may
        read it (SK after the calcium shell)."""
        first = 0
        for b in self.rate_blocks:
            b.vi, first = self.vi[first : first + b.n], first + b.n

        self._stimuli(recipe, types)
        self.detector_node = self.position[
            np.array([t.detector_node + s for t, s in zip(types, self.cell_start)], dtype=np.int64)
        ].astype(np.int32)
        self.threshold = np.array([t.threshold for t in types])
        self._views_key, self._views = None, None

    # -- construction -------------------------------------------------------------------------

    def _blocks(self, types, catalogue):
        """The mechanisms' blocks, built type by type (the cells of one type share their placements)."""
        by_type = {}
        for c, t in enumerate(types):
            by_type.setdefault(id(t), []).append(c)
        parts = {}  # mechanism -> [(group nodes, params, (synapse name, cells) or None)]
        for cells in map(np.asarray, by_type.values()):
            t, starts = types[cells[0]], self.cell_start[cells][:, None]
            for p in t.mechanisms:
                node = self.position[(p.node[None, :] + starts).ravel()]
                parts.setdefault(p.mechanism, []).append((node, np.tile(p.params, (1, cells.size)), None))
            for name in sorted(t.synapses):
                site = t.synapses[name]
                node = self.position[site.node + starts[:, 0]]
                params = np.repeat(site.params[:, None], cells.size, axis=1)
                parts.setdefault(site.mechanism, []).append((node, params, (name, cells)))
        blocks, offset = [], self.n_nodes
        self.synapse_slot = {}
        """synapse name -> (mechanism of each cell, or None where the cell has no such synapse; its
        instance index in that mechanism's block)"""
        for name in (m for m in catalogue if m in parts):
            node = np.concatenate([n for n, _, _ in parts[name]])
            order = np.argsort(node, kind="stable")  # instances in node order: monotone memory access
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            first = 0
            for n, _, key in parts[name]:
                if key is not None:
                    mech, j = self.synapse_slot.setdefault(
                        key[0], (np.full(self.gids.size, None, object), np.full(self.gids.size, -1))
                    )
                    mech[key[1]], j[key[1]] = name, rank[first : first + n.size]
                first += n.size
            params = np.concatenate([p for _, p, _ in parts[name]], axis=1)[:, order]
            block = Block(
                name, catalogue[name], node[order].astype(np.int32), np.ascontiguousarray(params), offset
            )
            blocks.append(block)
            offset += block.size
        return blocks

    def synapse_instance(self, gid, synapse):
        """(mechanism, instance index in its block) of gid's synapse."""
        mech, j = self.synapse_slot[synapse]
        cell = int(np.searchsorted(self.gids, gid))
        return mech[cell], int(j[cell])

    def _calcium_reversal(self):
        """The eca row: NEURON's rule. Where a mechanism writes cai, the Nernst potential of that cai
        (nernst_node, nernst_index: the nodes and the indices in u of their cai states), recomputed at every
        evaluation; elsewhere the `eca` parameter of the mechanisms that read the row, or ECA_DEFAULT."""
        self.ion[ECA] = ECA_DEFAULT
        node, index = [], []
        for b in self.blocks:
            if "eca" in b.module.ION_READS:
                names = [name for name, _, _ in b.module.PARAMS]
                self.ion[ECA, b.node] = b.params[names.index("eca")]
            if "cai" in b.module.ION_WRITES:
                node.append(b.node)
                index.append(b.offset + b.module.STATES.index("cai") * b.n + np.arange(b.n))
        node, index = _concat(node, np.int32), _concat(index, np.int64)
        by_node = np.argsort(node, kind="stable")  # so that a chunk's are consecutive
        self.nernst_node = node[by_node].astype(np.int32)
        self.nernst_index = index[by_node].astype(np.int64)

    def _stimuli(self, recipe, types):
        def columns(rows, width):
            cols = list(zip(*rows)) if rows else [[]] * width
            return np.asarray(cols[0], dtype=np.int32), [np.asarray(c, dtype=float) for c in cols[1:]]

        starts = list(zip(self.gids, self.cell_start))
        rows = [
            (self.position[node + start], *rest)
            for g, start in starts
            for node, *rest in recipe.iclamps_on(int(g))
        ]
        self.iclamp_node, (self.iclamp_delay, self.iclamp_duration, self.iclamp_amplitude) = columns(rows, 4)
        rows = [
            (self.position[node + start], *rest)
            for g, start in starts
            for node, *rest in recipe.pulse_trains_on(int(g))
        ]
        self.pulse_node, self.pulse = columns(rows, 6)
        """pulse trains: node, and [start, stop, period, width, amplitude] (kernels.stimuli.pulse_train)"""

    def stimulus_breaks(self, t0, t1):
        """Times in (t0, t1) where a current clamp or a pulse switches on or off (ms, sorted)."""
        edges = np.concatenate([self.iclamp_delay, self.iclamp_delay + self.iclamp_duration])
        edges = edges[(edges > t0) & (edges < t1)]
        if self.pulse_node.size:
            edges = np.concatenate([edges, stimuli.pulse_edges(*self.pulse[:4], t0, t1)])
        return np.unique(edges)

    def chunk_of(self, index):
        """The chunk (of chunk_nodes) of each unknown (indices in u): that of its node."""
        index = np.asarray(index, dtype=np.int64)
        node = index.copy()
        for b in self.blocks:
            at = (index >= b.offset) & (index < b.offset + b.size)
            node[at] = b.node[(index[at] - b.offset) % b.n]
        return np.searchsorted(self.chunk_nodes, node, side="right") - 1

    def block(self, name):
        return next(b for b in self.blocks if b.name == name)

    def event_target(self, gid, synapse):
        """(state indices in u, weight multipliers) that an event onto gid's synapse adds to."""
        mech, j = self.synapse_instance(gid, synapse)
        b = self.block(mech)
        scale = b.module.event_scale(b.params[:, j : j + 1])[:, 0]
        rows = np.nonzero(scale)[0]
        return b.offset + rows * b.n + j, scale[rows]

    def probe_sets(self, recipe):
        """One ProbeSet per probe entry that has cells on this rank."""
        out = {}
        for g in self.gids:
            ct = recipe.cell_type_of(int(g))
            for probe in recipe.probes_on(int(g)):
                idx = [self.unknown_index(int(g), ct, probe.variable, int(node)) for node in probe.nodes]
                entry = out.setdefault(probe.name, (probe.variable, [], [], [], []))
                entry[1].extend(idx)
                entry[2].extend([int(g)] * len(idx))
                entry[3].extend(int(node) for node in probe.nodes)
                entry[4].extend(ct.label(int(node)) for node in probe.nodes)
        return [
            ProbeSet(
                name,
                var,
                units_of(var),
                np.array(idx, np.int64),
                np.array(gid, np.int64),
                np.array(comp, np.int64),
                tuple(loc),
            )
            for name, (var, idx, gid, comp, loc) in out.items()
        ]

    def unknown_index(self, gid, cell_type, variable, node):
        """Index in u of a recordable variable at a node of cell gid (checked by model.checks)."""
        node = int(self.position[int(self.cell_start[np.searchsorted(self.gids, gid)]) + node])
        if variable == "v":
            return node
        head, _, state = variable.partition(".")
        if head in cell_type.synapses:
            mech, j = self.synapse_instance(gid, head)
            b = self.block(mech)
            return b.offset + b.module.STATES.index(state) * b.n + j
        if head == "cai" and not state:
            head, state = cell_type.cai_mechanism, "cai"
        b = self.block(head)
        j = int(np.nonzero(b.node == node)[0][0])
        return b.offset + b.module.STATES.index(state) * b.n + j

    @cached_property
    def cell_unknowns(self):
        """Per local cell, the indices in u of its unknowns in an order that does not depend on which other
        cells share the group: V of its nodes in the cell's own order, then, mechanism by mechanism
        (block order), state row by state row, its instances by node in the cell's own order."""
        n_cells = self.gids.size
        parts = [[self.position[self.cell_start[c] : self.cell_start[c + 1]]] for c in range(n_cells)]
        for b in self.blocks:
            if not b.size:
                continue
            index = self.order[b.node]  # cell-by-cell index of each instance's node
            cell = np.searchsorted(self.cell_start, index, side="right") - 1
            local = index - self.cell_start[cell]
            instance = np.lexsort((np.arange(b.n), local, cell))
            bounds = np.searchsorted(cell[instance], np.arange(n_cells + 1))
            rows = b.offset + np.arange(b.n_states)[:, None] * b.n
            for c in range(n_cells):
                mine = instance[bounds[c] : bounds[c + 1]]
                if mine.size:
                    parts[c].append((rows + mine[None, :]).ravel())
        return [np.concatenate(p).astype(np.int64) for p in parts]

    def locate_node(self, node):
        """(gid, node index within its cell) of a group node."""
        index = int(self.order[node])
        c = int(np.searchsorted(self.cell_start, index, side="right") - 1)
        return int(self.gids[c]), int(index - self.cell_start[c])

    # -- evaluation ---------------------------------------------------------------------------

    def views(self, u):
        """(v, [state array (n_states, n) per block]) as views into u, cached for the last memory given (a
        PETSc Vec's array is a new ndarray at every access, over the same memory)."""
        key = (u.__array_interface__["data"][0], u.size)
        if key != self._views_key:
            states = [u[b.offset : b.offset + b.size].reshape(b.n_states, b.n) for b in self.blocks]
            self._views_key, self._views = key, (u[: self.n_nodes], states)
        return self._views

    @cached_property
    def _current_calls(self):
        """Per block, the arguments of its current kernel but V, the states and the ion rows."""
        return [
            (b.module.current, b.node, b.params)
            + ((self.i_dens, self.g_dens) if b.module.KIND == "density" else (self.i_pt, self.g_pt))
            + (dids,)
            for b, dids in zip(self.blocks, self._dids[1])
        ]

    @cached_property
    def _dids(self):
        """(∂i/∂state of every state, flat; each block's (n_states, n) view of it): allocated on first use
        (the implicit form's; the staggered step does without)."""
        flat = np.zeros(self.n_states)
        lo = [b.offset - self.n_nodes for b in self.blocks]
        return flat, [flat[k : k + b.size].reshape(b.n_states, b.n) for k, b in zip(lo, self.blocks)]

    @property
    def dids(self):
        """∂i/∂state of every state (nA or mA/cm² per state unit), as the last `currents` left them."""
        return self._dids[0]

    def currents(self, u, t):
        """Membrane currents at V and states of u, stimuli at time t: fills i/g accumulators and dids."""
        v, states = self.views(u)
        self._reset.fill(0.0)
        if self.nernst_node.size:
            nernst_eca(u, self.nernst_index, self.nernst_node, self.celsius, self.ion)
        for (current, node, params, i_acc, g_acc, dids), s in zip(self._current_calls, states):
            current(v, node, params, s, self.ion, i_acc, g_acc, dids)
        if self.pulse_node.size:
            stimuli.pulse_train(t, self.pulse_node, *self.pulse, self.i_pt)
        if self.iclamp_node.size:
            stimuli.iclamp(
                t, self.iclamp_node, self.iclamp_delay, self.iclamp_duration, self.iclamp_amplitude, self.i_pt
            )

    @cached_property
    def _rate_arrays(self):
        """(x∞, τ) of every state, flat, and per rate block their (n_states, n) views: allocated on first use
        (the implicit form's; the staggered step updates the states without them)."""
        xinf, tau = np.zeros(self.n_states), np.ones(self.n_states)
        views = []
        for b in self.rate_blocks:
            lo, hi = b.offset - self.n_nodes, b.offset - self.n_nodes + b.size
            views.append((b, xinf[lo:hi].reshape(b.n_states, b.n), tau[lo:hi].reshape(b.n_states, b.n)))
        return xinf, tau, views

    @property
    def xinf(self):
        """x∞ of every state (as the last `rates` or Jacobian evaluation left it)."""
        return self._rate_arrays[0]

    @property
    def tau(self):
        """τ (ms) of every state (as the last `rates` or Jacobian evaluation left it)."""
        return self._rate_arrays[1]

    def rates(self, v):
        """x∞ and τ of every state at voltages v, into self.xinf and self.tau."""
        np.take(v, self.inst_node, out=self.vi)
        for b, xinf, tau in self._rate_arrays[2]:
            b.module.rates(b.vi, b.node, b.params, self.ion, self.celsius, xinf, tau)

    def initial_state(self):
        """u at t = 0: V = v_init and every mechanism's states as its INITIAL block sets them (initial_np),
        from the ion rows that the states give (cai at CAI_REST where a mechanism writes it)."""
        kept = "_dids" in self.__dict__
        u = np.zeros(self.size)
        u[: self.n_nodes] = self.v_init
        u[self.nernst_index] = CAI_REST
        for _ in range(3):  # gates, then the ica of their currents, then what reads the ion rows
            self.currents(u, 0.0)
            for b in self.blocks:
                if b.size:
                    start = b.module.initial_np(u[: self.n_nodes], b.node, b.params, self.ion, self.celsius)
                    u[b.offset : b.offset + b.size] = start.ravel()
        if not kept:  # ∂i/∂state (8 bytes per state) is kept only where it was in use (the implicit form)
            del self.__dict__["_dids"], self.__dict__["_current_calls"]
        return u


def _mechanism_sets(types, cell_start, catalogue):
    """Per node (cell-by-cell numbering), the rank of the set of density mechanisms placed on it among
    the group's sets, in an order that does not depend on which other cells are in the group (so that a
    cell's nodes keep their relative order, and its results their last bits, on any rank): the sets'
    membership rows in lexicographic order, those that hold the catalogue's first mechanism first."""
    index = {name: i for i, name in enumerate(catalogue)}
    absent = np.ones((int(cell_start[-1]), len(index)), dtype=bool)
    for t, start in zip(types, cell_start):
        for p in t.mechanisms:
            absent[p.node + start, index[p.mechanism]] = False
    if absent.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(absent, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def cell_chunks(sizes, limit):
    """Where each chunk of consecutive cells starts (cell index), and len(sizes) last: cells are added to a
    chunk while its nodes stay within limit."""
    starts, nodes = [0], 0
    for c, size in enumerate(sizes):
        if nodes and nodes + size > limit:
            starts.append(c)
            nodes = 0
        nodes += size
    return np.array(starts + [len(sizes)], dtype=np.int64)


def _concat(arrays, dtype=float):
    """np.concatenate, also of no arrays (a rank may own no cells)."""
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)


def units_of(variable):
    """Units of a recordable variable ('v', '<mechanism>.<state>', 'cai', '<synapse>.<state>')."""
    if variable == "v":
        return "mV"
    head, _, state = variable.partition(".")
    if head == "cai" or state == "cai":
        return "mM"
    return "µS" if state in ("g", "A", "B") else "1"
