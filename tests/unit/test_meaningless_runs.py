"""Configs that would run to `complete` and mean nothing are refused or warned about: interventions timed
at or after tstop, a brain whose scale leaves no cell (or no cell of a type, or an empty region), stimuli
after tstop, tract lengths estimated from region centres (kept noted when `brain.regions` takes a
subset); and a binary tree deeper than its diameters repeats the last one, as documented."""

import warnings

import numpy as np
import pytest
import yaml
from support import ROOT

import brainsim
from brainsim.cli import main
from brainsim.errors import BrainsimWarning, ConfigError
from brainsim.model import connectome as cx

SMALL_BRAIN = ROOT / "tests" / "data" / "small_brain.yaml"


def load(path, *overrides, interventions=()):
    """The config, and the BrainsimWarning messages its checks gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BrainsimWarning)
        config = brainsim.load_config(path, list(overrides), interventions=interventions)
    return config, [str(w.message) for w in caught if issubclass(w.category, BrainsimWarning)]


@pytest.mark.parametrize(
    "item, key",
    [
        ({"kind": "drug", "mechanism": "nata", "factor": 0.5, "onset": 200.0}, "onset"),
        (
            {"kind": "stimulation", "amplitude": 1.0, "frequency": 40.0, "pulse_width": 1.0, "start": 250.0},
            "start",
        ),
        ({"kind": "lesion", "at": 300.0, "regions": ["lh-precentral"]}, "at"),
    ],
)
def test_an_intervention_after_tstop_is_refused_naming_its_file_and_key(tmp_path, item, key):
    overlay = tmp_path / "late.yaml"
    overlay.write_text(yaml.safe_dump(item))
    with pytest.raises(ConfigError) as e:
        load(SMALL_BRAIN, interventions=[overlay])
    assert e.value.path == f"interventions[0].{key}" and e.value.file == str(overlay)
    assert "simulation.tstop = 200 ms" in str(e.value)


def test_an_intervention_before_tstop_is_accepted(tmp_path):
    overlay = tmp_path / "early.yaml"
    overlay.write_text(yaml.safe_dump({"kind": "drug", "mechanism": "nata", "factor": 0.5, "onset": 199.0}))
    load(SMALL_BRAIN, interventions=[overlay])


def test_a_brain_scaled_to_no_cells_is_refused_like_count_0():
    with pytest.raises(ConfigError) as e:
        load(SMALL_BRAIN, "brain.scale=0.01")
    assert e.value.path == "brain.scale" and "round to 0 cells in every one of the 6 regions" in str(e.value)


def test_a_scale_that_empties_a_cell_type_is_warned_about(capsys):
    _, caught = load(SMALL_BRAIN, "brain.scale=0.1")  # pyr: 16 x 0.1 -> 2, fs: 4 x 0.1 -> 0
    assert caught == ["brain.scale = 0.1 leaves no 'fs' cells in any region"]
    assert main(["validate", str(SMALL_BRAIN), "--set", "brain.scale=0.1"]) == 0
    err = capsys.readouterr().err
    assert err.count("brainsim: warning: brain.scale = 0.1 leaves no 'fs' cells") == 1, err


def test_a_probe_pattern_left_without_cells_by_a_subset_is_warned_about_and_a_typo_refused():
    """A subset of regions (or a scale) can leave a probed type without cells: the pattern is warned about,
    and region overrides of regions left out are unused; a pattern matching no population is an error."""
    subset = ["brain.regions=[lh-precentral, rh-precentral]", "brain.region_overrides={rh-insula: {}}"]
    probe = "probes=[{name: v, variable: v, cell: '*.fs', location: soma(0.5)}]"
    _, caught = load(SMALL_BRAIN, *subset, probe, "brain.cells_per_region.fs=0")
    assert "probes[0].cell = '*.fs' matches only populations without cells: no effect" in caught
    with pytest.raises(ConfigError) as e:
        load(SMALL_BRAIN, *subset, probe.replace("*.fs", "*.sf"))
    assert e.value.path == "probes[0].cell" and "lh-precentral.pyr" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load(SMALL_BRAIN, "brain.region_overrides={rh-insulla: {}}")
    assert e.value.path == "brain.region_overrides.rh-insulla" and "region label of the connectome" in str(
        e.value
    )


def test_an_empty_region_is_warned_about():
    _, caught = load(
        SMALL_BRAIN, "brain.region_overrides={lh-precentral: {cells_per_region: {pyr: 0, fs: 0}}}"
    )
    assert caught == ["1 brain region(s) have no cells (their rates are undefined): ['lh-precentral']"]


def test_stimuli_after_tstop_are_warned_about(tmp_path):
    config = ROOT / "configs" / "bench" / "m1_hh_cable.yaml"  # its current clamp starts at 5 ms
    _, caught = load(config, "simulation.tstop=5")
    assert caught == ["stimuli[0] (iclamp) begins at or after simulation.tstop = 5 ms: no effect"]
    assert load(config, "simulation.tstop=6")[1] == []


def untracted():
    """Three regions; the tract from lB to lA has length 0 under a nonzero weight."""
    weights = np.array([[0, 1.0, 0.5], [1.0, 0, 0.2], [0.5, 0.2, 0]])
    lengths = np.array([[0, 0.0, 30.0], [40.0, 0, 20.0], [30.0, 20.0, 0]])
    centres = np.array([[0.0, 0, 0], [3.0, 4.0, 0], [10.0, 0, 0]])
    return weights, lengths, ["lA", "lB", "rC"], centres


def test_estimated_tract_lengths_stay_noted_in_a_subset():
    full = cx.from_arrays(*untracted())
    assert full.tract_lengths[0, 1] == pytest.approx(5.0)
    sub = full.subset(["lA", "lB"])
    for c in (full, sub):
        assert any("1 tract length(s) of 0 under a nonzero weight" in note for note in c.notes), c.notes
    assert full.subset(["lA", "rC"]).estimated is None


def test_estimated_tract_lengths_are_warned_about_for_the_simulated_regions(tmp_path):
    weights, lengths, labels, centres = untracted()
    for name, matrix in (("w", weights), ("l", lengths), ("c", centres)):
        np.savetxt(tmp_path / f"{name}.txt", matrix)
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    raw = yaml.safe_load(SMALL_BRAIN.read_text())
    raw["brain"]["connectome"] = {
        "kind": "plain",
        **{key: str(tmp_path / f"{name}.txt") for key, name in [("weights", "w"), ("tract_lengths", "l")]},
        "labels": str(tmp_path / "labels.txt"),
        "centres": str(tmp_path / "c.txt"),
    }
    path = tmp_path / "brain.yaml"
    for regions, expected in ((["lA", "lB"], 1), (["lA", "rC"], 0)):
        raw["brain"]["regions"] = regions
        path.write_text(yaml.safe_dump(raw))
        config, caught = load(path)
        assert sum("tract length(s) of 0 under a nonzero weight" in w for w in caught) == expected, caught
    store = brainsim.run(config, tmp_path / "run.zarr", progress=False, overwrite=True)  # lA, rC: none noted
    assert not any("tract length" in note for note in store.provenance["connectome_notes"])


def test_a_binary_tree_deeper_than_its_diameters_runs(tmp_path):
    raw = yaml.safe_load((ROOT / "configs" / "bench" / "m2_ring.yaml").read_text())
    raw["cells"][0]["morphology"].update(depth=6, diameters=[2.0, 1.0])
    raw["cells"][0]["count"] = 2
    path = tmp_path / "deep.yaml"
    path.write_text(yaml.safe_dump(raw))
    config, _ = load(path, "simulation.tstop=2")
    run = brainsim.run(config, tmp_path / "deep.zarr", progress=False, overwrite=True)
    assert run.status == "complete" and run.counts["compartments"] == 2 * (1 + (2**6 - 1) * 13)
