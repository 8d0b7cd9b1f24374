"""The wheel works outside the source tree: built once, installed into a clean venv that sees the project's
dependencies but not its editable brainsim, and run from a folder that is not the repository."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
import zarr

ROOT = Path(__file__).resolve().parents[2]


def _dependency_dirs():
    """The site folders of this interpreter (venv, Debian's petsc4py and mpi4py, ...) without any that holds
    a brainsim package: the clean venv imports numpy, numba, zarr, petsc4py... from them."""
    dirs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    return [p for p in dict.fromkeys(dirs) if not (Path(p) / "brainsim").exists()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from the source tree (its build folders outside it) and installed into a clean venv;
    `sh(*args)` runs a command of that venv's bin/ in a work folder outside the repository."""
    top = tmp_path_factory.mktemp("wheel")
    build = top / "build"
    build.mkdir()
    (build / "setup.cfg").write_text(f"[build]\nbuild_base = {build}\n[egg_info]\negg_base = {build}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", top / "dist", ROOT],
        env={**env, "DIST_EXTRA_CONFIG": str(build / "setup.cfg")},
        check=True,
    )
    (wheel,) = (top / "dist").glob("brainsim-*.whl")
    venv = top / "venv"
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], check=True)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "brainsim-test-dependencies.pth").write_text("".join(f"{d}\n" for d in _dependency_dirs()))
    work = top / "work"
    work.mkdir()
    env["NUMBA_CACHE_DIR"] = str(top / "numba")

    def sh(*args):
        done = subprocess.run(
            [venv / "bin" / args[0], *args[1:]],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    return SimpleNamespace(venv=venv, work=work, sh=sh)


def test_the_installed_brainsim_is_the_wheel(installed):
    out = installed.sh(
        "python", "-c", "import brainsim, brainsim.resources as r; print(brainsim.__file__); "
        "print(r.config_file('demo.yaml')); print(r.template('run.sbatch')); print(r.profiles())",
    )  # fmt: skip
    for line in out.splitlines():
        assert Path(line).is_relative_to(installed.venv) and Path(line).exists(), out


def test_run_the_built_in_demo(installed):
    installed.sh("brainsim", "run", "--set", "simulation.tstop=5", "-o", "x.zarr", "-q")
    store = zarr.open_group(installed.work / "x.zarr", mode="r")
    assert store.attrs["status"] == "complete" and store.attrs["t_reached"] == 5.0
    assert "l5pc_soma_v" in store["traces"]


def test_submit_finds_its_templates_and_profiles(installed):
    code = "from brainsim import resources; print(resources.config_file('whole_brain.yaml'))"
    config = installed.sh("python", "-c", code).strip()
    assert Path(config).is_relative_to(installed.venv)
    installed.sh("brainsim", "submit", config, "--dry-run", "--jobs-dir", "J")
    folder = installed.work / "J" / "whole_brain"
    script = (folder / "job.sbatch").read_text()
    assert "#SBATCH --signal=B:USR1@" in script and str(installed.venv / "bin" / "python") in script
    assert (folder / "summarize.sbatch").is_file() and (folder / "job.json").is_file()


def test_the_shipped_synthetic_connectome(installed):
    code = "from brainsim import resources; print(resources.synthetic_connectome())"
    zip_path = installed.sh("python", "-c", code).strip()
    assert Path(zip_path).is_relative_to(installed.venv)
    config = yaml.safe_load((ROOT / "tests/data/small_brain.yaml").read_text())
    config["brain"]["connectome"] = {"kind": "tvb_zip", "file": zip_path}
    (installed.work / "small_brain.yaml").write_text(yaml.safe_dump(config))
    out = installed.sh("brainsim", "validate", "small_brain.yaml")
    assert f"brain: 6 regions of {zip_path}" in out
