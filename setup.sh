#!/usr/bin/env bash
# Set up brainsim in .venv/ at the repository root, from nothing or by reusing what is there.
#
#   ./setup.sh            system packages (PETSc, petsc4py, MPI, mpi4py, Chromium for the report tests),
#                         .venv, brainsim + test tools
#
# PETSc and MPI: on Debian/Ubuntu the distribution's petsc4py (PETSc 3.18, Open MPI) is used, seen
# through a venv made with --system-site-packages. On a cluster, load the PETSc/MPI modules first
# (PETSC_DIR, PETSC_ARCH and a python3 that imports petsc4py and mpi4py) and set BRAINSIM_PYTHON to
# that interpreter: no system package is then installed.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
venv="$root/.venv"
debian_python=/usr/bin/python3
python=${BRAINSIM_PYTHON:-$debian_python}
deb_packages=(python3-venv python3-dev python3-petsc4py python3-petsc4py-real python3-mpi4py openmpi-bin
              libopenmpi-dev chromium)

log() { printf '[setup] %s\n' "$*" >&2; }

has_petsc() {
    PETSC_DIR=${PETSC_DIR:-$(debian_petsc_dir)} "$python" -c 'import petsc4py, mpi4py' 2>/dev/null
}

debian_petsc_dir() {
    # Debian installs each PETSc build under /usr/lib/petscdir/<version>/<arch>; pick the real-valued one.
    local d
    for d in /usr/lib/petscdir/petsc*/x86_64-linux-gnu-real /usr/lib/petscdir/petsc*/*-real; do
        [ -d "$d/lib/python3/dist-packages/petsc4py" ] && { echo "$d"; return; }
    done
    echo ""
}

install_system_packages() {
    local missing=()
    for p in "${deb_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { log "need root (or sudo) to install: ${missing[*]}"; exit 1; }
        sudo=sudo
    fi
    log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
        || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

if [ -z "${BRAINSIM_PYTHON:-}" ]; then
    command -v apt-get >/dev/null || { log "no apt-get: set BRAINSIM_PYTHON to a python3 with petsc4py and mpi4py"; exit 1; }
    install_system_packages
    "$root/slurm/local/install.sh"  # a one-node SLURM for the workflow tests (started only by them)
fi
has_petsc || { log "$python cannot import petsc4py and mpi4py (PETSC_DIR=${PETSC_DIR:-unset})"; exit 1; }

# Reuse the environment when neither this script nor the project's requirements changed.
stamp="$venv/.brainsim-setup"
want=$(cat setup.sh pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ -x "$venv/bin/brainsim" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "reusing $venv"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    "$python" -m venv --system-site-packages "$venv"
fi
# Debian's petsc4py lives under PETSC_DIR; a .pth file lets the venv find it without the variable set.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
petsc_dir=${PETSC_DIR:-$(debian_petsc_dir)}
if [ -n "$petsc_dir" ] && [ -d "$petsc_dir/lib/python3/dist-packages" ]; then
    echo "$petsc_dir/lib/python3/dist-packages" > "$site/brainsim-petsc.pth"
fi
log "installing brainsim and its dependencies"
pip_log="$venv/pip-install.log"
"$venv/bin/python" -m pip install --disable-pip-version-check -c constraints.txt -e ".[test,lint,brain,cluster,twin]" \
    >"$pip_log" 2>&1 || { tail -n 30 "$pip_log" >&2; log "pip install failed (full log: $pip_log)"; exit 1; }
"$venv/bin/python" -c 'import brainsim, petsc4py, mpi4py, numba, zarr' \
    || { log "installation incomplete"; exit 1; }
echo "$want" > "$stamp"
log "ready: $venv"
