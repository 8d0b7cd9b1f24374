"""Batch scripts rendered for every site profile, campaigns expanded, plans computed — without SLURM."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml
import zarr

from brainsim.cli import main
from brainsim.config import load_config
from brainsim.errors import ConfigError
from brainsim.hpc.jobs import RunJob, seconds, write_scripts
from brainsim.hpc.plan import plan
from brainsim.hpc.profiles import available, load_profile
from brainsim.hpc.sweep import expand, load_campaign
from brainsim.model.recipe import Recipe

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "tests/data/small_brain.yaml"


def job(tmp_path, profile, **options):
    args = [[str(SMALL), "--set", "simulation.tstop=50"]]
    return RunJob("small", args, tmp_path / "small", 2, 4, "02:00:00", load_profile(profile), **options)


@pytest.mark.parametrize("name", available())
def test_every_profile_renders_valid_scripts(tmp_path, name):
    profile = load_profile(name)
    run, summary = write_scripts(job(tmp_path, name, checkpoint_every="50ms"))
    text = run.read_text()
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --time=02:00:00",
                 f"#SBATCH --signal=B:USR1@{profile['signal_seconds']}", "#SBATCH --requeue"):  # fmt: skip
        assert line in text
    assert f"{profile['launcher']} " in text and "--checkpoint-every 50ms" in text
    assert "scontrol requeue" in text and "--resume" in text
    for module in profile["modules"]:
        assert f"module load {module}" in text
    for option in profile["sbatch"]:
        assert f"#SBATCH {option}" in text
    if profile["partition"]:
        assert f"#SBATCH --partition={profile['partition']}" in text
    assert "{{" not in text and "{{" not in summary.read_text()
    assert "brainsim.cli summarize" in summary.read_text()
    for script in (run, summary):
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert (tmp_path / "small/run.args").read_text().splitlines() == [
        str(SMALL),
        "--set",
        "simulation.tstop=50",
    ]


def test_options_override_the_profile(tmp_path):
    run, _ = write_scripts(job(tmp_path, "example_hpc", partition="short", account="abc"))
    text = run.read_text()
    assert "#SBATCH --partition=short" in text and "#SBATCH --account=abc" in text
    assert "--partition=compute" not in text


def test_time_limits(tmp_path):
    assert seconds("02:00:00") == 7200 and seconds("1-00:00:30") == 86430 and seconds("90") == 5400
    with pytest.raises(ConfigError, match="--time.*HH:MM:SS"):
        seconds("2h")
    with pytest.raises(ConfigError, match="longer than the profile's signal_seconds"):  # before any writing
        RunJob("x", [["c"]], tmp_path, 1, 1, "00:04:00", load_profile("generic"))


def test_bad_profile_names_the_file_and_key(tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text("name: site\nsignal_seconds: -5\n")
    with pytest.raises(ConfigError, match="signal_seconds") as e:
        load_profile(str(bad))
    assert str(bad) in str(e.value)
    with pytest.raises(ConfigError, match="one of the profiles"):
        load_profile("nowhere")


def test_submit_dry_run_writes_and_shows(tmp_path, capsys):
    code = main(["submit", str(SMALL), "--nodes", "1", "--ntasks-per-node", "2", "--time", "00:10:00",
                 "--profile", "local", "--jobs-dir", str(tmp_path), "--dry-run"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "#SBATCH --signal=B:USR1@30" in out and "srun --mpi=pmix" in out
    record = json.loads((tmp_path / "small_brain/job.json").read_text())
    assert record["jobs"] == {} and record["store"] == str(tmp_path / "small_brain/run.zarr")


def test_campaign_expands_the_grid(tmp_path):
    spec = load_campaign(ROOT / "jobs/dose_sweep.yaml")
    tasks = expand(spec)
    assert len(tasks) == 6
    regions = ["rPFCDL", "lPFCDL", "rPFCM", "lPFCM"]
    assert tasks[4]["params"] == {"interventions[0].factor": 0.8, "interventions[0].regions": regions}
    args = tasks[4]["args"]
    sets = [args[k + 1] for k in range(len(args)) if args[k] == "--set"]
    config = load_config(args[0], sets, patient=args[args.index("--patient") + 1],
                         interventions=[args[args.index("--intervention") + 1]])  # fmt: skip
    assert config["interventions"][0]["factor"] == 0.8 and config["simulation"]["tstop"] == 200


def test_campaign_errors_name_the_file_and_key(tmp_path):
    campaign = tmp_path / "c.yaml"
    campaign.write_text(yaml.safe_dump({"name": "c", "config": str(SMALL), "grid": {"simulation.tstop": []}}))
    with pytest.raises(ConfigError, match=r"grid\.simulation\.tstop.*non-empty list") as e:
        load_campaign(campaign)
    assert str(campaign) in str(e.value)
    campaign.write_text(yaml.safe_dump({"name": "c", "config": str(SMALL), "grid": {"simulation.dt": [-1]}}))
    assert main(["sweep", str(campaign), "--dry-run", "--jobs-dir", str(tmp_path)]) == 2  # task 0 is invalid


def test_plan_counts_and_recommendation(capsys):
    config = load_config(SMALL)
    recipe = Recipe(config)
    p = plan(config, 3, cores_per_node=2, target_s=1.0)
    assert p["cells"] == 120 and p["equations"] == sum(recipe.cell_type(q.name).n_equations * q.count
                                                       for q in recipe.populations)  # fmt: skip
    low, high = p["memory_per_rank_gb"]
    assert 0.2 < low <= high < 0.3
    # wall time: the most loaded rank's compartment-steps at the cost per compartment-step
    assert p["wall_s"] == pytest.approx(p["wall_s_per_simulated_s"] * 0.2)
    warm = plan(load_config(SMALL, ["simulation.warmup=300"]), 3)  # the warm-up is simulated too
    assert warm["wall_s"] == pytest.approx(p["wall_s_per_simulated_s"] * 0.5)
    assert p["recommended_ranks"] >= 1 and p["recommended_nodes"] == -(-p["recommended_ranks"] // 2)
    assert main(["plan", str(SMALL), "--ranks", "2", "--target-time", "00:01:00"]) == 0
    assert "120 cells" in capsys.readouterr().out


def test_stop_signal_while_starting_up_still_checkpoints(tmp_path):
    """SIGUSR1 during start-up (imports, build): the run stops at its first epoch boundary, exit 75."""
    import signal
    import sys
    import time

    store = tmp_path / "run.zarr"
    command = [sys.executable, "-m", "brainsim.cli", "run", str(SMALL), "-q", "-o", str(store)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    process.send_signal(signal.SIGUSR1)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 75, err
    attrs = zarr.open_group(store, mode="r").attrs
    assert attrs["status"] == "interrupted" and "SIGUSR1" in attrs["error"]
    assert (tmp_path / "run.checkpoint/latest/manifest.json").is_file()
