"""PoissonSources (engine.events): an epoch's events from every stream at once, the same whatever the
epochs, each time once, with the stream's targets and weights."""

import numpy as np
from support import ROOT

import brainsim
from brainsim.engine.events import PoissonSources
from brainsim.engine.group import CellGroup

SMALL_BRAIN = ROOT / "tests/data/small_brain.yaml"


def sources():
    recipe = brainsim.Recipe(brainsim.load_config(SMALL_BRAIN))
    return PoissonSources(recipe, CellGroup(recipe, list(range(recipe.num_cells))))


def taken(ps, ends):
    parts = [ps.events_before(t) for t in ends]
    return [(p.source.tolist(), p.time.tolist(), p.index.tolist(), p.weight.tolist()) for p in parts]


def flat(parts):
    rows = [(s, t, i, w) for p in parts for s, t, i, w in zip(*p)]
    return sorted(rows, key=lambda r: (r[1], r[0], r[2]))


def test_the_events_do_not_depend_on_the_epochs():
    ps = sources()
    assert len(ps.streams) > 10
    fine = taken(ps, np.arange(0.5, 200.01, 0.5))
    coarse = taken(sources(), [3.0, 50.0, 51.0, 200.0])
    assert flat(fine) == flat(coarse) and len(flat(fine)) > 1000
    for (_, time, _, _), end in zip(fine, np.arange(0.5, 200.01, 0.5)):
        assert all(end - 0.5 <= t < end for t in time)  # each epoch gives its own times, once
    assert {s for p in fine for s in p[0]} == set(ps.source.tolist())  # every stream gave some


def test_a_stream_continues_from_what_it_has_not_given():
    """`ahead` (what checkpoints store) is what is still to come: rewriting it changes nothing."""
    a, b = sources(), sources()
    a.events_before(10.0)
    b.events_before(10.0)
    for s in b.streams:
        s.ahead = s.ahead  # the row rewritten from its first time not taken, as a restore does
        assert np.all(s.ahead >= 10.0)
    assert flat(taken(a, [20.0, 40.0])) == flat(taken(b, [20.0, 40.0]))
