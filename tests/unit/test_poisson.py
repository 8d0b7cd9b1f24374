"""PoissonSources (engine.events): an epoch's events from every stream at once, the same whatever the
epochs, each time once, with the stream's targets and weights; each stream its own seed's generator, whose
state the table keeps and a checkpoint restores."""

import numpy as np
import pytest
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


def test_a_stream_draws_its_own_seed_in_chunks():
    """Stream i's times are start + the running sum of its own generator's exponential intervals
    (numpy's default_rng of its seed), drawn CHUNK at a time: the generator's state lives in the table."""
    ps = sources()
    times = flat(taken(ps, [200.0]))
    for i in (0, len(ps.streams) // 2, len(ps.streams) - 1):
        spec, source, target = ps.streams[i].spec, ps.source[i], ps.streams[i].index[0]
        rng, last, expected = np.random.default_rng(list(spec.stream)), spec.start, []
        while last < 200.0:
            draws = last + np.cumsum(rng.exponential(1000.0 / spec.rate, ps.CHUNK))
            expected += draws.tolist()
            last = draws[-1]
        got = [t for s, t, k, _ in times if s == source and k == target]
        assert len(got) > ps.CHUNK  # more than one chunk was drawn
        assert got == [t for t in expected if t < min(200.0, spec.stop)]
        assert ps.streams[i].state == rng.bit_generator.state


def test_a_restored_stream_goes_on_as_the_original():
    a, b = sources(), sources()
    a.events_before(100.0)
    for sa, sb in zip(a.streams, b.streams):  # what a checkpoint restores
        sb.state, sb.last, sb.ahead = sa.state, sa.last, sa.ahead
    assert flat(taken(a, [150.0, 300.0])) == flat(taken(b, [150.0, 300.0]))
    with pytest.raises(ValueError):
        b.streams[0].state = {**a.streams[0].state, "bit_generator": "MT19937"}
