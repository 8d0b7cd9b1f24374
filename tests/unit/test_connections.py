"""ConnectionTable (engine.events): the local cells' incoming connections in compressed rows by source,
one entry per connection, expanded to the target synapse's states only when a spike arrives. Checked
against the recipe's connections expanded directly, for every source, to the bit."""

import numpy as np
from support import ROOT

import brainsim
from brainsim.engine.events import ConnectionTable
from brainsim.engine.group import CellGroup

SMALL_BRAIN = ROOT / "tests/data/small_brain.yaml"


def table(gids=None):
    recipe = brainsim.Recipe(brainsim.load_config(SMALL_BRAIN))
    group = CellGroup(recipe, list(range(recipe.num_cells)) if gids is None else gids)
    return recipe, group, ConnectionTable(recipe, group)


def expected(recipe, group, source, time):
    """(time, state index, weight) of every event a spike of `source` at `time` causes, from the recipe."""
    rows = []
    for gid in group.gids:
        inc = recipe.connections_on(int(gid))
        for s, synapse, w, d in zip(inc.source, inc.synapse, inc.weight, inc.delay):
            if s == source:
                index, scale = group.event_target(int(gid), synapse)
                rows += [(time + d, int(i), w * f) for i, f in zip(index, scale)]
    return sorted(rows)


def test_every_source_gives_the_recipes_events():
    recipe, group, c = table(list(range(10, 70)))  # some local cells, sources local and not
    assert len(c) == sum(len(recipe.connections_on(int(g)).source) for g in group.gids)
    assert np.all(np.diff(c.sources) > 0) and c.start[-1] == len(c)
    for source in range(recipe.num_cells):
        ev = c.events_from(np.array([source]), np.array([12.5]))
        got = sorted(zip(ev.time.tolist(), ev.index.tolist(), ev.weight.tolist()))
        assert got == expected(recipe, group, source, 12.5), source
        assert np.all(ev.source == source)
        assert (len(ev) > 0) == (source in c.sources)


def test_spikes_of_several_sources_at_once():
    recipe, group, c = table()
    gid, time = np.array([3, 3, 50, 119, 7]), np.array([1.0, 2.0, 1.5, 3.0, 0.5])
    ev = c.events_from(gid, time)
    one = [c.events_from(gid[k : k + 1], time[k : k + 1]) for k in range(gid.size)]
    for field in ("time", "index", "weight", "source"):
        assert np.array_equal(getattr(ev, field), np.concatenate([getattr(e, field) for e in one]))
    assert len(c.events_from(np.array([10**9]), np.array([1.0]))) == 0  # a gid without connections


def test_regions_and_sources_of_connections():
    recipe, group, c = table()
    k = np.arange(len(c))
    source = c.source_of(k)
    assert np.array_equal(c.source_regions(recipe), recipe.regions_of(source))
    cell = c.slot_cell[c.target]
    cell_region = recipe.regions_of(group.gids)
    assert np.array_equal(c.target_regions(cell_region), recipe.regions_of(group.gids[cell]))
    for j in (0, len(c) // 3, len(c) - 1):  # connection j is one of its target cell's incoming ones
        inc = recipe.connections_on(int(group.gids[cell[j]]))
        hits = (inc.source == source[j]) & (inc.delay == c.delay[j]) & (inc.weight == c.weight[j])
        assert hits.any()
