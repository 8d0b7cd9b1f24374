#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by slurm/local/up.sh (slurmd, then slurmctld).
#
#   slurm/local/down.sh [STATE_DIR]    default STATE_DIR: $BRAINSIM_SLURM_STATE or /tmp/brainsim-slurm
#
# munged is left running (other software may use it). Running jobs are killed with slurmd.
set -euo pipefail
state=${1:-${BRAINSIM_SLURM_STATE:-/tmp/brainsim-slurm}}

if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
    exec sudo -E "$0" "$@"
fi

stop() {
    local pidfile=$1 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile"
}

# Cancel jobs first so that their processes do not outlive slurmd.
if [ -f "$state/slurm.conf" ] && [ -s "$state/slurmctld.pid" ]; then
    export SLURM_CONF="$state/slurm.conf"
    if timeout 10 scancel --quiet --user="$(id -un)" 2>/dev/null; then
        for _ in $(seq 30); do [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
    fi
fi
stop "$state/slurmd.pid"
stop "$state/slurmctld.pid"
echo "[slurm] stopped (state $state)" >&2
