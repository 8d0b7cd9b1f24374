"""PETSc options, from simulation.petsc or the command line (PETSc's options database): a type PETSc does
not have, a value it refuses and an option it never reads while setting the method up are errors naming
the option, for `validate` (check_petsc_options) and for a run (make_integrator) alike."""

import pytest
import yaml
from support import TINY, edited

import brainsim
from brainsim.engine.integrators import check_petsc_options
from brainsim.errors import ConfigError
from brainsim.model.recipe import Recipe
from brainsim.parallel.context import init_petsc


@pytest.fixture
def config(tmp_path):
    """load(*overrides): the tiny one-cell config with --set overrides."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(edited(TINY, **{"simulation.tstop": 0.5})))
    return lambda *overrides: brainsim.load_config(path, list(overrides))


@pytest.fixture
def command_line():
    """put(name, value): an option in PETSc's database, as `brainsim run ... -name value` puts it there;
    taken out again afterwards."""
    opts, names = init_petsc().Options(), []

    def put(name, value=""):
        opts[name] = value
        names.append(name)

    yield put
    for name in names:
        opts.delValue(name)


@pytest.mark.parametrize(
    "petsc, path, message",
    [
        ("{ts_type: nonsense}", "simulation.petsc.ts_type", "a PETSc TS type: ["),
        ("{snes_type: nonsense}", "simulation.petsc.snes_type", "a PETSc SNES type: ["),
        ("{ts_tpye: cn}", "simulation.petsc.ts_tpye", "PETSc never read this one"),
        ("{ts_type: cn, ts_bdf_order: 3}", "simulation.petsc.ts_bdf_order", "(ts_type cn)"),
        ("{ts_adapt_type: nonsense}", "simulation.petsc", "PETSc error 86: Unknown type"),
    ],
)
def test_validate_names_the_bad_option(config, petsc, path, message):
    with pytest.raises(ConfigError) as e:
        check_petsc_options(Recipe(config(f"simulation.petsc={petsc}")))
    assert e.value.path == path and message in str(e.value)


def test_good_options_pass_and_later_read_ones_are_not_refused(config):
    """Tolerances, monitors, and options PETSc reads only while solving (viewers, convergence reasons)."""
    petsc = "{ts_adapt_type: basic, ts_rtol: 1.0e-6, ts_atol: 1.0e-6, snes_converged_reason: true}"
    check_petsc_options(Recipe(config(f"simulation.petsc={petsc}")))
    check_petsc_options(Recipe(config("simulation.method=staggered", "simulation.petsc={ts_rtol: 1.0e-3}")))


def test_the_command_line_is_checked_and_named_with_its_dash(config, command_line):
    command_line("ts_tpye", "cn")
    command_line("ts_view")
    with pytest.raises(ConfigError) as e:
        check_petsc_options(Recipe(config()))
    assert e.value.path == "-ts_tpye" and e.value.value == "cn"


def test_a_run_refuses_a_misspelt_option_before_it_starts(config, command_line, tmp_path):
    command_line("snes_rtoll", "1e-3")
    with pytest.raises(ConfigError, match="'-snes_rtoll'.*PETSc never read"):
        brainsim.run(config(), tmp_path / "out.zarr", progress=False)
    assert not (tmp_path / "out.zarr").exists()


def test_a_run_with_good_options_completes(config, tmp_path):
    run = brainsim.run(config("simulation.petsc={ts_type: cn}"), tmp_path / "out.zarr", progress=False)
    assert run.status == "complete"
