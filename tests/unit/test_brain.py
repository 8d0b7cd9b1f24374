"""The whole-brain model without running it: populations, connectivity statistics, patients, overlays."""

from pathlib import Path

import numpy as np
import pytest
from support import checked

from brainsim.config import load_config
from brainsim.errors import ConfigError
from brainsim.model.checks import check_model
from brainsim.model.connectome import from_arrays, read_tvb_zip, write_tvb_zip
from brainsim.model.recipe import Recipe

REPO = Path(__file__).resolve().parents[2]
SMALL = REPO / "tests/data/small_brain.yaml"
REGIONS = ["lh-precentral", "lh-postcentral", "lh-superiorfrontal", "rh-precentral", "rh-postcentral"]
REGIONS += ["rh-superiorfrontal"]


def recipe(*overrides, patient=None, interventions=()):
    """The checked recipe of the small brain with overrides and overlay files."""
    return checked(load_config(SMALL, list(overrides), patient=patient, interventions=interventions))


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------ populations


def test_populations_per_region_and_type_in_connectome_order():
    r = recipe()
    assert [p.name for p in r.populations] == [f"{label}.{t}" for label in REGIONS for t in ("pyr", "fs")]
    assert [p.count for p in r.populations] == [16, 4] * 6
    assert r.num_cells == 120
    assert r.regions_of(np.arange(120)).tolist() == np.repeat(np.arange(6), 20).tolist()
    assert r.brain.labels == tuple(REGIONS)
    assert [p.name for p in r.matching("*.fs")] == [f"{label}.fs" for label in REGIONS]


def test_a_recipe_of_wrong_references_is_built_for_its_checks():
    """Recipe(config) reads and builds nothing yet: check_model reports the references between sections
    first, then what only the connectome can tell (a region label it lacks)."""
    bad_type = "brain.cells_per_region={pyr: 16, basket: 4}"
    bad_region = "brain.regions=[lh-precentral, lh-x]"
    with pytest.raises(ConfigError) as err:
        check_model(Recipe(load_config(SMALL, [bad_region, bad_type])))
    assert err.value.path == "brain.cells_per_region.basket" and err.value.value == "basket"
    with pytest.raises(ConfigError) as err:
        check_model(Recipe(load_config(SMALL, [bad_region])))
    assert err.value.path == "brain.regions" and err.value.value == "lh-x"


def test_population_table_for_readers_of_the_output():
    table = recipe().population_table()
    assert table[0] == {
        "name": "lh-precentral.pyr",
        "region": "lh-precentral",
        "cell_type": "pyr",
        "first_gid": 0,
        "count": 16,
        "kind": "excitatory",
    }
    assert [row["kind"] for row in table] == ["excitatory", "inhibitory"] * 6
    assert [row["first_gid"] for row in table[:3]] == [0, 16, 20]
    demo = {row["name"]: row for row in Recipe(load_config(REPO / "configs/demo.yaml")).population_table()}
    assert demo["pyr"]["kind"] == "excitatory" and demo["inh"]["kind"] == "inhibitory"
    assert demo["l5pc"]["kind"] == "" and demo["l5pc"]["region"] is None  # it contacts no cell


def test_scale_rounds_counts_and_overrides_replace_them():
    r = recipe(
        "brain.scale=2.5",
        "brain.region_overrides={rh-postcentral: {cells_per_region: {pyr: 3, fs: 0}}}",
    )
    counts = {p.name: p.count for p in r.populations}
    assert counts["lh-precentral.pyr"] == 40 and counts["lh-precentral.fs"] == 10
    assert counts["rh-postcentral.pyr"] == 8 and counts["rh-postcentral.fs"] == 0  # 3 × 2.5 = 7.5 -> 8
    assert r.num_cells == 5 * 50 + 8


def test_counts_from_density_and_region_areas(tmp_path):
    c = read_tvb_zip(REPO / "configs/connectomes/synthetic_68.zip").subset(REGIONS)
    areas = np.array([1000.0, 2000.0, 1500.0, 1000.0, 0.0, 3000.0])
    with_areas = from_arrays(
        c.weights, c.tract_lengths, c.labels, c.centres, hemispheres=c.hemispheres, areas=areas
    )
    write_tvb_zip(with_areas, tmp_path / "areas.zip")
    r = recipe(
        f"brain.connectome={{kind: tvb_zip, file: {tmp_path / 'areas.zip'}}}",
        "brain.cells_per_region={fs: 2}",
        "brain.cells_per_mm2={pyr: 0.0105}",
        "brain.scale=2",
    )
    pyr = [p.count for p in r.populations if p.cell_type == "pyr"]
    assert pyr == [21, 42, 32, 21, 0, 63]  # round(0.0105 × area × 2)
    assert all(p.count == 4 for p in r.populations if p.cell_type == "fs")


def test_density_needs_areas():
    with pytest.raises(ConfigError, match="cells_per_mm2.*no region areas"):
        recipe("brain.cells_per_region={fs: 2}", "brain.cells_per_mm2={pyr: 0.01}")


def test_region_factors_scale_the_cell_type_parameters():
    r = recipe("brain.region_overrides={lh-postcentral: {factors: {pyr: {nata.gbar: 0.5}, all: {pas.g: 2}}}}")
    base, changed = r.cell_type("lh-precentral.pyr"), r.cell_type("lh-postcentral.pyr")

    def param(cell_type, mechanism, name):
        from brainsim.config.mechanisms import CATALOGUE

        placement = next(m for m in cell_type.mechanisms if m.mechanism == mechanism)
        return placement.params[[p[0] for p in CATALOGUE[mechanism].PARAMS].index(name)]

    assert np.allclose(param(changed, "nata", "gbar"), 0.5 * param(base, "nata", "gbar"))
    assert np.allclose(param(changed, "pas", "g"), 2 * param(base, "pas", "g"))
    assert np.allclose(param(r.cell_type("lh-postcentral.fs"), "pas", "g"), 2e-4)
    assert np.allclose(param(r.cell_type("lh-precentral.fs"), "pas", "g"), 1e-4)


def test_background_drive_per_region():
    r = recipe("brain.region_overrides={rh-precentral: {background: {pyr: {rate: 2000}}}}")
    drive = {label: r.poisson_on(r.population(f"{label}.pyr").first_gid)[0] for label in REGIONS}
    assert drive["rh-precentral"].rate == 2000 and drive["rh-precentral"].weight == 0.0005
    assert drive["lh-precentral"].rate == 1000 and drive["lh-precentral"].synapse == "ampa"
    gids = [r.population(f"{label}.pyr").first_gid + 1 for label in REGIONS[:2]]
    assert r.poisson_on(gids[0])[0].stream != r.poisson_on(gids[1])[0].stream  # own stream per cell
    with pytest.raises(ConfigError, match="background.pyr.*brain.background"):
        recipe(
            "brain.background={fs: {synapse: ampa, rate: 10, weight: 0.001}}",
            "brain.region_overrides={rh-precentral: {background: {pyr: {rate: 2000}}}}",
        )


# ------------------------------------------------------------------------------------------ connectivity


def incoming(r, gid):
    inc = r.connections_on(gid)
    return inc.source, np.array(inc.synapse), inc.weight, inc.delay


def test_local_indegree_is_exact_within_the_region_without_autapses():
    r = recipe("brain.long_range.indegree=0")
    for gid in range(r.num_cells):
        pop = r.population_of(gid)
        source, synapse, weight, delay = incoming(r, gid)
        src_pop = [r.population_of(int(s)) for s in source]
        assert all(p.region == pop.region for p in src_pop)
        assert gid not in source
        from_pyr = sum(p.cell_type == "pyr" for p in src_pop)
        from_fs = sum(p.cell_type == "fs" for p in src_pop)
        assert (from_pyr, from_fs) == ((4, 2) if pop.cell_type == "pyr" else (4, 2))
        gaba = synapse == "gaba"
        assert np.array_equal(gaba, [p.cell_type == "fs" for p in src_pop])
        if pop.cell_type == "pyr":
            ee = ~gaba
            assert np.all((delay[ee] >= 1.0) & (delay[ee] <= 3.0)) and np.allclose(weight[ee], 0.0003)
            assert np.all((delay[gaba] >= 1.0) & (delay[gaba] <= 2.0)) and np.allclose(weight[gaba], 0.003)
        else:
            assert np.allclose(delay[gaba], 1.5) and np.allclose(weight[gaba], 0.001)


def test_local_connection_probability():
    r = recipe(
        "brain.long_range.indegree=0",
        "brain.cells_per_region={pyr: 200, fs: 4}",
        "brain.local=[{source: pyr, target: pyr, synapse: ampa, probability: 0.1, weight: 0.001, delay: 1}]",
    )
    pyr = [p for p in r.populations if p.cell_type == "pyr"]
    degrees = []
    for pop in pyr[:2]:
        for gid in range(pop.first_gid, pop.first_gid + pop.count):
            source = incoming(r, gid)[0]
            assert gid not in source and np.unique(source).size == source.size  # no autapse, no multapse
            assert np.all((source >= pop.first_gid) & (source < pop.first_gid + pop.count))
            degrees.append(source.size)
    # binomial(199, 0.1): mean 19.9, sd 4.2; 400 cells: the mean within 3 standard errors
    assert abs(np.mean(degrees) - 19.9) < 3 * 4.2 / np.sqrt(400)
    assert r.expected_indegree(pyr[0]) == pytest.approx(19.9)


def test_long_range_indegree_follows_the_connectome_weights_and_tract_delays():
    r = recipe("brain.local=[]", "brain.cells_per_region={pyr: 100, fs: 4}", "brain.long_range.indegree=40")
    brain = r.brain
    w = brain.connectome.weights
    for k in range(len(REGIONS)):
        pop = r.population(f"{REGIONS[k]}.pyr")
        counts = np.zeros(len(REGIONS))
        for gid in range(pop.first_gid, pop.first_gid + pop.count):
            source, synapse, weight, delay = incoming(r, gid)
            assert source.size == 40 and set(synapse) == {"ampa"} and np.allclose(weight, 0.0005)
            src_region = r.regions_of(source)
            assert all(r.population_of(int(s)).cell_type == "pyr" for s in source)
            expected_delay = brain.connectome.tract_lengths[k, src_region] / 5.0 + 1.0
            assert np.allclose(delay, expected_delay)
            counts += np.bincount(src_region, minlength=len(REGIONS))
        share = w[k] / w[k].sum()
        assert counts[share == 0].sum() == 0 and counts[k] == 0  # no self-loops in the connectome
        # multinomial over 100 × 40 draws: each share within 4 standard deviations
        n = counts.sum()
        sd = np.sqrt(n * share * (1 - share))
        assert np.all(np.abs(counts - n * share) <= 4 * sd + 1e-9), (REGIONS[k], counts, n * share)


def test_long_range_weight_factors_per_target_type():
    plain = recipe("brain.local=[]")
    weaker = recipe("brain.local=[]", "brain.long_range.weight_factors={fs: 0.25}")
    for name, factor in (("lh-precentral.pyr", 1.0), ("lh-precentral.fs", 0.25)):
        gid = plain.population(name).first_gid
        a, b = plain.connections_on(gid), weaker.connections_on(gid)
        assert np.array_equal(a.source, b.source) and np.allclose(a.weight, 0.0005)
        assert np.allclose(b.weight, 0.0005 * factor)
    with pytest.raises(ConfigError) as e:
        recipe("brain.long_range.weight_factors={l5pc: 0.5}")
    assert e.value.path == "brain.long_range.weight_factors.l5pc" and "['fs', 'pyr']" in str(e.value)


def test_patient_long_range_scale_multiplies_every_long_range_weight(tmp_path):
    patient = write(tmp_path, "p.yaml", "id: P-3\nlong_range_scale: 0.4\n")
    plain = recipe("brain.local=[]", "brain.long_range.weight_factors={fs: 0.25}")
    scaled = recipe("brain.local=[]", "brain.long_range.weight_factors={fs: 0.25}", patient=patient)
    for name, factor in (("lh-precentral.pyr", 1.0), ("lh-precentral.fs", 0.25)):
        gid = plain.population(name).first_gid
        a, b = plain.connections_on(gid), scaled.connections_on(gid)
        assert np.array_equal(a.source, b.source) and np.array_equal(a.delay, b.delay)
        assert np.allclose(b.weight, 0.0005 * factor * 0.4)


def test_conduction_speed_sets_the_long_range_delays_and_the_epoch():
    slow, fast = recipe("brain.conduction_speed=2.0"), recipe("brain.conduction_speed=8.0")
    gid = slow.population("lh-precentral.pyr").first_gid
    s, f = slow.connections_on(gid), fast.connections_on(gid)
    assert np.array_equal(s.source, f.source)
    long_range = slow.regions_of(s.source) != 0
    assert long_range.sum() == 6
    tract = (s.delay[long_range] - 1.0) * 2.0
    assert np.allclose(f.delay[long_range], tract / 8.0 + 1.0)
    assert slow.min_delay == pytest.approx(1.0) and fast.min_delay <= slow.min_delay


def test_connections_depend_on_the_gid_alone():
    """Drawn from (seed, gid): the same whatever builds them, in any order (so on any rank count)."""
    a, b = recipe(), recipe()
    gids = np.arange(a.num_cells)
    first = {g: incoming(a, int(g)) for g in gids}
    for g in gids[::-1]:
        for x, y in zip(first[g], incoming(b, int(g))):
            assert np.array_equal(x, y)
    c = recipe("simulation.seed=6")
    assert any(not np.array_equal(first[g][0], incoming(c, int(g))[0]) for g in gids)


# ------------------------------------------------------------------------------------------ patients


def test_patient_overlay(tmp_path):
    patient = write(
        tmp_path,
        "p.yaml",
        """
id: P-17
conduction_speed: 2.5
cell_loss: {all: 0.1, lh-postcentral: 0.5}
factors:
  all: {fs: {nata.gbar: 0.5}}
  lh-postcentral: {pyr: {kv31.gbar: 0.25}}
lesions:
  regions: [rh-superiorfrontal]
  tracts:
    - {source: lh-precentral, target: rh-precentral, scale: 0.0}
""",
    )
    base, r = recipe(), recipe(patient=patient)
    assert r.brain.labels == tuple(REGIONS[:5])  # a resected region
    counts = [p.count for p in r.populations]
    assert counts == [
        14,
        4,
        7,
        2,
        14,
        4,
        14,
        4,
        14,
        4,
    ]  # 16 × 0.9 = 14.4, 16 × 0.9 × 0.5 = 7.2, 4 × 0.45 = 1.8
    assert r.brain.speed == 2.5
    w0, w = base.brain.connectome.weights, r.brain.connectome.weights
    i, j = REGIONS.index("lh-precentral"), REGIONS.index("rh-precentral")
    assert w0[j, i] > 0 and w[j, i] == 0 and w[i, j] == 0  # cut both ways
    assert w[0, 1] == w0[0, 1]
    assert r.brain.factors(1, "pyr") == {"kv31.gbar": 0.25}
    assert r.brain.factors(0, "fs") == {"nata.gbar": 0.5}
    assert r.brain.factors(0, "pyr") == {}
    gid = r.population("rh-precentral.pyr").first_gid
    sources = r.regions_of(r.connections_on(gid).source)
    assert i not in sources


def test_patient_connectome_file_relative_to_the_overlay(tmp_path):
    c = read_tvb_zip(REPO / "configs/connectomes/synthetic_68.zip")
    folder = tmp_path / "patients"
    folder.mkdir()
    write_tvb_zip(
        from_arrays(c.weights * 2, c.tract_lengths * 1.5, c.labels, c.centres, hemispheres=c.hemispheres),
        folder / "mine.zip",
    )
    patient = write(folder, "p.yaml", "id: P-2\nconnectome: {kind: tvb_zip, file: mine.zip}\n")
    r = recipe(patient=patient)
    assert np.allclose(r.brain.connectome.tract_lengths, c.subset(REGIONS).tract_lengths * 1.5)


@pytest.mark.parametrize(
    "text, path, allowed",
    [
        ("id: x\nlesions: {regions: [lh-nowhere]}\n", "patient.lesions.regions", "rh-superiorfrontal"),
        ("id: x\ncell_loss: {lh-nowhere: 0.2}\n", "patient.cell_loss.lh-nowhere", "rh-superiorfrontal"),
        ("id: x\ncell_loss: {all: 1.5}\n", "patient.cell_loss.all", "<= 1"),
        (
            "id: x\nfactors: {lh-nowhere: {pyr: {nata.gbar: 2}}}\n",
            "patient.factors.lh-nowhere",
            "lh-precentral",
        ),
        ("id: x\nfactors: {all: {basket: {nata.gbar: 2}}}\n", "patient.factors.all.basket", "['fs', 'pyr']"),
        ("id: x\nfactors: {all: {pyr: {nat.gbar: 2}}}\n", "patient.factors.all.pyr.nat.gbar", "nata"),
        ("factors: {}\n", "patient.id", "required"),
    ],
)
def test_bad_patients_name_the_key_and_the_valid_names(tmp_path, text, path, allowed):
    patient = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        recipe(patient=patient)
    assert err.value.path == path and allowed in str(err.value)


@pytest.mark.parametrize(
    "text, path, allowed",
    [
        (
            "kind: drug\nmechanism: nata\nfactor: 0.5\nregions: [lh-x]\n",
            "interventions[0].regions",
            "lh-precentral",
        ),
        (
            "kind: drug\nmechanism: nata\nfactor: 0.5\ncell_types: [basket]\n",
            "interventions[0].cell_types",
            "pyr",
        ),
        ("kind: drug\nmechanism: natx\nfactor: 0.5\n", "interventions[0].mechanism", "nata"),
        ("kind: drug\nmechanism: kp\nfactor: 0.5\n", "interventions[0].mechanism", "['kv31', 'nata', 'pas']"),
        ("kind: drug\nmechanism: nata\nparameter: g\nfactor: 0.5\n", "interventions[0].parameter", "gbar"),
        (
            "kind: stimulation\namplitude: 1\nfrequency: 10\nlocation: 'dend[3](0.5)'\n",
            "interventions[0].location",
            "",
        ),
        (
            "kind: lesion\nat: 5\ntracts: [{source: lh-x, target: lh-precentral, scale: 0}]\n",
            "interventions[0].tracts[0].source",
            "rh-postcentral",
        ),
        ("kind: surgery\n", "interventions[0].kind", "drug"),
    ],
)
def test_bad_interventions_name_the_key_and_the_valid_names(tmp_path, text, path, allowed):
    item = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        recipe(interventions=[item])
    assert err.value.path == path and allowed in str(err.value)
    assert err.value.from_overlay({"interventions[0]": str(item)}).file == str(item)


def test_example_overlays_apply_to_the_default_brain():
    config = load_config(
        REPO / "configs/whole_brain.yaml",
        patient=REPO / "configs/patients/example.yaml",
        interventions=[
            REPO / f"configs/interventions/{name}.yaml" for name in ("sodium_block", "stimulation", "lesion")
        ],
    )
    pytest.importorskip("tvb_data")
    r = checked(config)
    assert "rTCPOL" not in r.brain.labels and len(r.brain.labels) == 75
    assert [item["kind"] for item in config["interventions"]] == ["drug", "stimulation", "lesion"]
    assert config.overlays["patient"].endswith("configs/patients/example.yaml")
