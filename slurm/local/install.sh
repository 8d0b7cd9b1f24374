#!/usr/bin/env bash
# Install the Debian packages for a one-node SLURM cluster on this machine (slurm/local/up.sh).
# Idempotent and quiet: exits at once when everything is installed.
#   slurm-wlm    slurmctld + slurmd + client commands (sbatch, srun, squeue, scancel, scontrol)
#   munge        authentication between the daemons and the commands
#   libpmix-dev  provides libpmix.so, which SLURM's mpi/pmix plugin loads for `srun --mpi=pmix` (Open MPI)
set -euo pipefail
packages=(slurm-wlm munge libpmix-dev)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

command -v apt-get >/dev/null || { echo "slurm/local/install.sh: no apt-get; install SLURM and munge by hand" >&2; exit 1; }
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "slurm/local/install.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
echo "[slurm] installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Retry after refreshing the package lists once when they are stale.
apt_install() { $sudo apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; }
if ! apt_install && ! { $sudo apt-get update >"$log" 2>&1 && apt_install; }; then
    tail -n 20 "$log" >&2
    echo "slurm/local/install.sh: apt-get install failed" >&2
    exit 1
fi
