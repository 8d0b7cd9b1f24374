"""A simulation's state at an epoch boundary, keyed by gid: what checkpoints hold and forks start from."""

import json
from dataclasses import dataclass, replace

import numpy as np

from ..io.checkpoint import Part
from .events import Events


@dataclass(frozen=True)
class SimulationState:
    """One rank's share of a simulation's state at `time` (ms): its cells' unknowns in their canonical
    order, their pending events, their Poisson streams and the region summaries' open bin."""

    time: float  # ms
    part: Part
    region_bin: float | None  # ms, the bin of the region summaries (None without a brain)
    region_first: int  # index of the open bin

    @property
    def gids(self):
        return self.part.gid


def capture(sim):
    """The state of this rank's cells in `sim` (a Simulation at an epoch boundary)."""
    g = sim.group
    u = sim.integrator.u.getArray(readonly=True)
    canon = g.cell_unknowns
    owner, position = unknown_owner(g)
    ev = sim.queue.pending
    streams = sim.poisson.streams
    part = Part(
        gid=g.gids.copy(),
        offset=np.concatenate([[0], np.cumsum([c.size for c in canon])]).astype(np.int64),
        state=np.concatenate([u[c] for c in canon]) if canon else np.zeros(0),
        events={
            "ev_time": ev.time.copy(),
            "ev_gid": g.gids[owner[ev.index]],
            "ev_position": position[ev.index],
            "ev_weight": ev.weight.copy(),
            "ev_source": ev.source.copy(),
        },
        poisson={
            "ps_gid": np.array([s.spec.stream[1] for s in streams], dtype=np.int64),
            "ps_salt": np.array([s.spec.stream[2] for s in streams], dtype=np.int64),
            "ps_state": [json.dumps(s.state) for s in streams],
            "ps_last": np.array([s.last for s in streams], dtype=float),
            "ps_offset": np.concatenate([[0], np.cumsum([s.ahead.size for s in streams])]).astype(np.int64),
            "ps_ahead": np.concatenate([s.ahead for s in streams]) if streams else np.zeros(0),
        },
        regions=np.zeros((g.gids.size, 3))
        if sim.regions is None
        else np.column_stack(sim.regions.open_state()[1:]),
    )
    region_bin = None if sim.regions is None else sim.regions.bin
    return SimulationState(float(sim.time), part, region_bin, 0 if sim.regions is None else sim.regions.first)


def unpack(part):
    """(cell states, events, streams, open-bin rows) of a Part, in the shapes `read_cells` returns."""
    states = [part.state[a:b] for a, b in zip(part.offset[:-1], part.offset[1:])]
    p = part.poisson
    streams = [
        (
            int(p["ps_gid"][i]),
            int(p["ps_salt"][i]),
            p["ps_state"][i],
            float(p["ps_last"][i]),
            p["ps_ahead"][a:b],
        )
        for i, (a, b) in enumerate(zip(p["ps_offset"][:-1], p["ps_offset"][1:]))
    ]
    return states, part.events, streams, part.regions


def apply(sim, time, states, events, streams, open_bin, region_first):
    """Put `sim` (this rank) in the given state at `time` (ms): states and open-bin rows in the group's gid
    order, events with their target gid and position, streams as (gid, salt, state JSON, last, ahead),
    region_first the index of the region summaries' open bin."""
    g = sim.group
    canon = g.cell_unknowns
    u = np.empty(g.size)
    for c, state in enumerate(states):
        u[canon[c]] = state
    cell_of = {int(gid): c for c, gid in enumerate(g.gids)}
    index = np.array(
        [canon[cell_of[int(gid)]][pos] for gid, pos in zip(events["ev_gid"], events["ev_position"])],
        dtype=np.int64,
    )
    sim.queue.pending = Events(events["ev_time"], index, events["ev_weight"], events["ev_source"])
    sim.poisson.restore(streams)
    if sim.regions is not None:
        sim.regions.restore(region_first, *np.asarray(open_bin).reshape(-1, 3).T)
    sim.interventions.rewind()
    sim.integrator.set_state(u, time)
    sim.integrator.restart()


def unknown_owner(group):
    """(local cell, position in its canonical order) of every unknown of the group."""
    owner, position = np.empty(group.size, np.int64), np.empty(group.size, np.int64)
    for c, index in enumerate(group.cell_unknowns):
        owner[index], position[index] = c, np.arange(index.size)
    return owner, position


def shifted(state, by):
    """The state with its clock moved by `by` ms (pending events and Poisson streams with it) and the
    region summaries' open bin emptied: a settled state that starts a recording at time + by."""
    part = state.part
    events = {**part.events, "ev_time": part.events["ev_time"] + by}
    poisson = {
        **part.poisson,
        "ps_last": part.poisson["ps_last"] + by,
        "ps_ahead": part.poisson["ps_ahead"] + by,
    }
    moved = replace(part, events=events, poisson=poisson, regions=np.zeros_like(part.regions))
    return SimulationState(state.time + by, moved, state.region_bin, 0)
