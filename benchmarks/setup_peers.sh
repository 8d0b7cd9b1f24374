#!/usr/bin/env bash
# Create benchmarks/.peers-venv with the peer simulators (NEURON, Arbor), or reuse it if it works.
# It uses the same base python3 as brainsim's .venv and never touches .venv itself. The mpich wheel
# gives NEURON its MPI (lib/libmpi.so.12 and bin/mpiexec, for scaling.py); mpi4py is not needed.
#
#   benchmarks/setup_peers.sh
set -euo pipefail
cd "$(dirname "$0")"
venv="$(pwd)/.peers-venv"
brainsim_py=../.venv/bin/python

log() { printf '[setup_peers] %s\n' "$*" >&2; }

if "$venv/bin/python" -c 'import neuron, arbor, numpy' >/dev/null 2>&1 && [ -x "$venv/bin/mpiexec" ]; then
    log "reusing $venv"
    exit 0
fi
if [ -x "$brainsim_py" ]; then
    python=$("$brainsim_py" -c 'import sys; print(sys._base_executable)')
else
    python=python3
fi
log "creating $venv with $python"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q neuron==9.0.2 arbor==0.12.2 numpy \
    mpich==5.0.2
"$venv/bin/python" -c 'import neuron, arbor, numpy' >/dev/null || { log "installation incomplete"; exit 1; }
log "ready: $venv"
