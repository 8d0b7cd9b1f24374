"""The exact Jacobian of a CellGroup's implicit form F(t, u, u') = 0, and its inverse (kernels.implicit).

Every entry is a symbolic derivative that brainsim.nmodl generated for the mechanism (`current`'s g and
∂i/∂state, `rates_jacobian`, `current_jacobian`); none is a difference quotient. The mechanisms of one node
also couple through the ion rows, by NEURON's rules (kernels.ions):

* where a mechanism writes cai, eca is the Nernst potential of that cai state, so the currents that read
  eca or cai (Ca_HVA, Ca_LVAst) and the rates that read them (SK_E2's z) depend on the cai state;
* the rates that read ica (CaDynamics_E2's cai) depend on V, on the gates of the mechanisms that write
  ica there (Ca_HVA's m and h) and, through eca, on cai.

Those couplings are entries of the Jacobian beyond the tree and each state's own V (kernels.implicit):
the hubs are the writer's cai and the states of the rates that read ica; the readers of cai and eca (SK's
z) link to the cai hub, the ica writers' gates to the hubs that read ica. A current that reads ica (no
NEURON mechanism does) is taken at fixed ica.
"""

import numpy as np

from ..kernels import implicit
from ..kernels.ions import FARADAY, GAS, ION_FIELDS
from .group import _concat
from .implicit_form import coupled, load_implicit_form


class Jacobian:
    """J = ∂F/∂u + shift·∂F/∂u' of a group at a state u (`assemble`), and J⁻¹·r (`solve`), J·x (`mult`)."""

    def __init__(self, group):
        g, n = group, group.n_nodes
        self.group = g
        self.state_node = _concat([np.tile(b.node, b.n_states) for b in g.blocks], np.int64).astype(np.int32)
        """The node of every state (kernels/LAYOUT.md)."""
        per = [g.area[b.node] * 1e-2 if b.module.KIND == "density" else np.ones(b.n) for b in g.blocks]
        self.state_scale = _concat([np.tile(p, b.n_states) for p, b in zip(per, g.blocks)], float)
        """Factor from a state's ∂i/∂state (per instance) to nA at its node: A·1e-2 or 1."""
        self.d0, self.d, self.dwork, self.rwork = (np.zeros(n) for _ in range(4))
        self.jss, self.jsv, self.jvs, self.rjss = (np.zeros(g.n_states) for _ in range(4))
        self.nernst_scale = 1e3 * GAS * (g.celsius + 273.15) / (2.0 * FARADAY)  # mV: eca = it·ln(CAO/cai)
        # the ion terms: per state ∂F/∂(ion row) and ∂ica/∂state, per node the sums ∂I/∂(ion row) (nA),
        # ∂ica/∂V and ∂ica/∂(ion row) of the ica writers there
        self.jsi, self.di_dion, self.dica_dion = np.zeros((3, g.n_states)), np.zeros((3, n)), np.zeros((3, n))
        self.dica_dv, self.dica_ds = np.zeros(n), np.zeros(g.n_states)
        self._per_block(g, per)
        self._structure(g)
        self._bind(g)

    # -- structure ------------------------------------------------------------------------------

    def _per_block(self, g, per):
        """The block arguments of the compiled `evaluate` and `assemble` (engine.implicit_form), in the order
        of their generated signatures: views of the arrays they fill (per: each block's factor from a
        density to nA)."""
        n = g.n_nodes
        xinf, tau = g._rate_arrays[:2]
        self.evaluate_blocks, self.assemble_blocks = [], []
        for b, scale, dids in zip(g.blocks, per, g._dids[1]):
            lo, hi = b.offset - n, b.offset - n + b.size
            self.evaluate_blocks += [b.node, b.params, dids]
            if b.n_states:
                rows = [ION_FIELDS.index(r) for r in b.module.RATE_ION_READS]  # ascending: a strided slice
                step = rows[1] - rows[0] if len(rows) > 1 else 1
                jsi = self.jsi[rows[0] : rows[-1] + 1 : step, lo:hi] if rows else np.zeros((0, b.size))
                jsi = jsi.reshape(len(rows), b.n_states, b.n)  # a view: rates_jacobian fills self.jsi
                shape = (b.n_states, b.n)
                self.evaluate_blocks += [b.vi, xinf[lo:hi].reshape(shape), tau[lo:hi].reshape(shape)]
                self.evaluate_blocks += [self.jsv[lo:hi].reshape(shape), jsi]
            if coupled(b):
                dica_ds = self.dica_ds[lo:hi].reshape(b.n_states, b.n)
                self.assemble_blocks += [b.node, b.params, scale, dica_ds]

    def _structure(self, g):
        """The hubs and the links of the module docstring, and where each ion term lands among them."""
        n, ns = g.n_nodes, g.n_states
        writer = np.full(n, -1, np.int64)  # the cai state (index in the state part) written at each node
        writer[g.nernst_node] = g.nernst_index - n
        w_of_node = np.full(n, -1, np.int64)  # index of each node among the writer nodes
        w_of_node[g.nernst_node] = np.arange(g.nernst_node.size)
        rows = {b.name: (b.offset - n) + np.arange(b.size).reshape(b.n_states, b.n) for b in g.blocks}
        is_hub = np.zeros(ns, bool)
        is_hub[writer[writer >= 0]] = True
        ica_readers = [b for b in g.blocks if "ica" in b.module.RATE_ION_READS]
        for b in ica_readers:
            is_hub[rows[b.name].ravel()] = True
        cstate = np.nonzero(is_hub)[0]
        cstate = cstate[np.argsort(self.state_node[cstate], kind="stable")]
        cnode, first, size = np.unique(self.state_node[cstate], return_index=True, return_counts=True)
        cstart = np.concatenate([first, [cstate.size]]).astype(np.int64)
        mstart = np.concatenate([[0], np.cumsum(size.astype(np.int64) ** 2)]).astype(np.int64)
        m, cells = cstate.size, int(mstart[-1])
        pos = np.full(ns, -1, np.int64)  # hub state -> its index in cstate
        pos[cstate] = np.arange(m)
        block_of = np.repeat(np.arange(cnode.size), size)
        local = np.arange(m) - cstart[block_of]

        def entry(a, b):
            """Index in mat of the entry (hub row a, hub column b), two hubs (state indices) of one node."""
            c = block_of[pos[a]]
            return (mstart[c] + local[pos[a]] * size[c] + local[pos[b]]).astype(np.int64)

        def ints(*arrays):
            return tuple(np.asarray(a, np.int64) for a in arrays)

        self.cstate = cstate
        w_node = g.nernst_node.astype(np.int64)
        w_pos = pos[writer[w_node]]  # the cai hub of each writer node
        # rate readers of cai/eca at writer nodes: a hub row's entry in mat, or a free row's link
        hub_cai, link_cai = [[], [], []], [[], []]
        for b in g.blocks:
            if set(b.module.RATE_ION_READS) & {"cai", "eca"}:
                j = np.nonzero(w_of_node[b.node] >= 0)[0]
                a = rows[b.name][:, j].ravel()
                w = np.tile(w_of_node[b.node[j]], b.n_states)
                hub, at = is_hub[a], a[is_hub[a]]
                for out, part in zip(hub_cai, (at, w[hub], entry(at, writer[self.state_node[at]]))):
                    out.append(part)
                link_cai[0].append(a[~hub])
                link_cai[1].append(w[~hub])
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
        hub_cai = ints(*map(cat, hub_cai))
        c_state, c_w = ints(*map(cat, link_cai))
        # rate readers of ica (hubs): their V column, their cai column, and every ica writer state of the node
        ra = np.concatenate([rows[b.name].ravel() for b in ica_readers] or [np.zeros(0, np.int64)])
        ra_node = self.state_node[ra].astype(np.int64)
        has = w_of_node[ra_node] >= 0
        hub_ica = ints(ra[has], w_of_node[ra_node[has]], entry(ra[has], writer[ra_node[has]]))
        wk = [rows[b.name].ravel() for b in g.blocks if "ica" in b.module.ION_WRITES]
        wk = np.concatenate(wk).astype(np.int64) if wk else np.zeros(0, np.int64)
        wk = wk[np.argsort(self.state_node[wk], kind="stable")]
        wn = self.state_node[wk]
        lo = np.searchsorted(wn, ra_node, "left")
        count = np.searchsorted(wn, ra_node, "right") - lo
        within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        pa, pk = np.repeat(ra, count), wk[np.repeat(lo, count) + within]
        hub = is_hub[pk]
        hub_pairs = ints(entry(pa[hub], pk[hub]), pa[hub], pk[hub])
        r_state, r_reader = pk[~hub], pa[~hub]
        # a free state linked both ways (its column in a hub row, the cai hub's column in its row)
        c_index = np.full(ns, -1, np.int64)
        c_index[c_state] = np.arange(c_state.size)
        rc_r = np.nonzero(c_index[r_state] >= 0)[0]
        rc_c = c_index[r_state[rc_r]]
        rc_at = entry(r_reader[rc_r], writer[self.state_node[r_state[rc_r]]])
        f64 = np.zeros
        self.hub = (
            cnode.astype(np.int32), cstart, cstate.astype(np.int32), mstart[:-1].copy(), f64(cells),
            f64(cells), np.zeros(m, np.int32), f64(m), f64(m), f64(m), f64(m), f64(m), f64(m),
        )  # fmt: skip
        self.links = (
            pos[r_reader], r_state.astype(np.int32), f64(r_state.size), c_state.astype(np.int32), w_pos[c_w],
            f64(c_state.size), *ints(rc_at, rc_r, rc_c),
        )  # fmt: skip
        self.ions = (
            g.nernst_index.astype(np.int64), w_node, w_pos, f64(w_node.size), entry(cstate, cstate),
            *ints(ra, pos[ra], ra_node), hub_cai, hub_ica, hub_pairs, r_reader.astype(np.int64), c_w,
        )  # fmt: skip

    def _bind(self, g):
        """The compiled calls of the group's mechanisms and their arguments but u, u', F, t and the shift."""
        form = load_implicit_form(g)
        self._evaluate, self._assemble = form.evaluate, form.assemble
        n, offset = g.n_nodes, np.array([b.offset for b in g.blocks], np.int64)
        xinf, tau = g._rate_arrays[:2]
        self.evaluate_args = (
            g.celsius, n, offset, g._reset, g.ion, g.i_dens, g.g_dens, g.i_pt, g.g_pt, g.nernst_index,
            g.nernst_node, g.pulse_node, *g.pulse, g.iclamp_node, g.iclamp_delay, g.iclamp_duration,
            g.iclamp_amplitude, g.inst_node, g.vi, g.cap, g.gax, g.parent, g.area, xinf, tau,
            *self.evaluate_blocks,
        )  # fmt: skip
        self.assemble_args = (
            n, offset, g.cap, g.dax, g.area, g.g_dens, g.g_pt, self.d0, self.d, g.dids, self.state_scale, tau,
            self.jss, self.jsv, self.jvs, self.rjss, self.state_node, g.ion, self.nernst_scale,
            self.di_dion, self.dica_dion, self.dica_dv, self.dica_ds, self.jsi, self.ions, self.hub,
            self.links, *self.assemble_blocks,
        )  # fmt: skip
        self._no_residual = np.zeros(0)

    # -- evaluation -----------------------------------------------------------------------------

    def assemble(self, u, shift, t, evaluated=False):
        """The Jacobian at state u for the derivative shift of the method (1/ms), stimuli at time t
        (evaluated: `evaluate` was just called at u and t)."""
        if not evaluated:
            self.evaluate(u, t)
        self._assemble(shift, u, *self.assemble_args)

    def evaluate(self, u, t, udot=None, f=None):
        """The group's currents (with ∂i/∂state) at u, stimuli at time t, and every state's x∞, τ and
        ∂F/∂V, ∂F/∂(ion row) at u's V (each mechanism's rates_jacobian: the residual's rates and the
        Jacobian's rate entries share their exps); with udot and f, also the residual f = F(t, u, udot)."""
        if f is None:
            self._evaluate(t, u, u, self._no_residual, False, *self.evaluate_args)
        else:
            self._evaluate(t, u, udot, f, True, *self.evaluate_args)

    def solve(self, r, x):
        """x = J⁻¹·r, exactly."""
        g = self.group
        implicit.schur_solve(
            r, self.d, g.gax, g.parent, self.rjss, self.jss, self.jsv, self.jvs, self.state_node, self.hub,
            self.links, x, self.dwork, self.rwork,
        )  # fmt: skip

    def mult(self, x, y):
        """y = J·x."""
        g = self.group
        implicit.jacobian_mult(
            x, self.d0, g.gax, g.parent, self.jss, self.jsv, self.jvs, self.state_node, self.hub,
            self.links, y,
        )  # fmt: skip

    def dense(self):
        """The assembled Jacobian as a dense matrix (kernels.implicit.jacobian_dense_np; small groups)."""
        g = self.group
        return implicit.jacobian_dense_np(
            self.d0, g.gax, g.parent, self.jss, self.jsv, self.jvs, self.state_node, self.hub,
            self.links,
        )  # fmt: skip
