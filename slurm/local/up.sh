#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (slurmctld + slurmd + munged, as root).
#
#   slurm/local/up.sh [STATE_DIR]      default STATE_DIR: $BRAINSIM_SLURM_STATE or /tmp/brainsim-slurm
#
# Writes STATE_DIR/slurm.conf (cluster brainsim-local, node = `hostname -s`, partition debug) and, when
# /etc/slurm/slurm.conf is absent or was written by this script, copies it there so that the SLURM
# commands find it without SLURM_CONF. State, spool, logs and the job-completion log live in STATE_DIR.
# Idempotent: returns at once when the cluster is already up with the same configuration; otherwise
# restarts the daemons, keeping queued and running jobs (slurmctld recovers them from its state).
# Prints the settings to use (SLURM_CONF=..., partition, job-completion log) on stdout.
#
# Environment: BRAINSIM_SLURM_CPUS    CPUs declared on the node (default: max(8, real CPUs))
#              BRAINSIM_SLURM_PORT    slurmctld port; slurmd uses PORT+1 (default 6817)
#              BRAINSIM_SLURM_TIMEOUT seconds to wait for the node to become idle (default 60)
set -euo pipefail
state=${1:-${BRAINSIM_SLURM_STATE:-/tmp/brainsim-slurm}}
marker="# brainsim-local: written by slurm/local/up.sh"
etc_conf=/etc/slurm/slurm.conf
timeout=${BRAINSIM_SLURM_TIMEOUT:-60}

log() { printf '[slurm] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "slurmd must run as root (no sudo found)"
    exec sudo -E "$0" "$@"
fi
for cmd in slurmctld slurmd sinfo scontrol munged; do
    command -v "$cmd" >/dev/null || die "$cmd not found: run slurm/local/install.sh"
done
mkdir -p "$state"
state=$(cd "$state" && pwd)
conf="$state/slurm.conf"

# --- configuration --------------------------------------------------------------------------------
host=$(hostname -s)
real_cpus=$(nproc --all)
cpus=${BRAINSIM_SLURM_CPUS:-$((real_cpus > 8 ? real_cpus : 8))}
total_mb=$(free -m | awk '/^Mem:/ {print $2}')
mem_mb=$((total_mb * 9 / 10))
port=${BRAINSIM_SLURM_PORT:-6817}

write_conf() {
    cat <<EOF
$marker
# State: $state
ClusterName=brainsim-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Requeued jobs wait cred_expire seconds before they may start again (default 120).
AuthInfo=cred_expire=5
MailProg=/bin/true

# Processes and tasks: no cgroups in a container. No CPU binding (task/none): the node declares more
# CPUs than it has, and task/affinity cannot bind tasks to CPUs that do not exist.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SwitchType=switch/none

# Scheduling: the node declares at least 8 CPUs (config_overrides), so that a 4-task job, or several
# small jobs side by side (concurrent test sessions), run on a 2-core machine; cores are consumable,
# memory is not.
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides

# Timeouts kept short for tests.
SlurmctldTimeout=10
SlurmdTimeout=30
MessageTimeout=5
InactiveLimit=0
KillWait=5
OverTimeLimit=0
MinJobAge=30
ReturnToService=2
JobRequeue=1

# No slurmdbd: completed jobs go to a text file.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.log

StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

print_settings() {
    local slurm_conf=$conf
    [ "$(cat "$etc_conf" 2>/dev/null)" = "$(cat "$conf")" ] && slurm_conf=$etc_conf
    echo "SLURM_CONF=$slurm_conf"
    echo "BRAINSIM_SLURM_STATE=$state"
    echo "BRAINSIM_SLURM_PARTITION=debug"
    echo "BRAINSIM_SLURM_NODE=$host"
    echo "BRAINSIM_SLURM_JOBCOMP=$state/jobcomp.log"
    echo "BRAINSIM_SLURM_STARTED=$1"
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { SLURM_CONF=$conf sinfo -h -n "$host" -o %T 2>/dev/null | head -n1; }

healthy() {
    pid_alive "$state/slurmctld.pid" && pid_alive "$state/slurmd.pid" || return 1
    SLURM_CONF=$conf scontrol ping 2>/dev/null | grep -q UP || return 1
    case "$(node_state)" in idle* | mixed* | allocated* | completing*) return 0 ;; *) return 1 ;; esac
}

new_conf=$(write_conf)
if [ -f "$conf" ] && [ "$(cat "$conf")" = "$new_conf" ] && healthy; then
    print_settings 0
    exit 0
fi

# --- stop a previous instance (ours only); its jobs live on ------------------------------------------
stop() {
    local pidfile=$1 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
}
stop "$state/slurmd.pid"
stop "$state/slurmctld.pid"
for daemon in slurmctld slurmd; do
    for pid in $(pgrep -x "$daemon" || true); do
        # Another local cluster (other STATE_DIR) holds the ports: stop it if this script started it.
        other=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-f$/{n;p;q}')
        if [ -n "$other" ] && head -n1 "$other" 2>/dev/null | grep -qxF "$marker"; then
            log "stopping $daemon $pid (configuration $other)"
            kill "$pid" 2>/dev/null || true
        else
            die "a $daemon not started by this script is running (pid $pid): stop it first"
        fi
    done
done
for _ in $(seq 50); do pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break; sleep 0.2; done

printf '%s\n' "$new_conf" >"$conf"
mkdir -p "$state/ctld" "$state/spool"
# Without saved state job ids start at 1 again: keep an older completion log apart.
if [ ! -e "$state/ctld/job_state" ] && [ -s "$state/jobcomp.log" ]; then
    mv "$state/jobcomp.log" "$state/jobcomp.log.old"
fi
touch "$state/jobcomp.log"
chmod 755 "$state"
# Install system-wide only where no real site configuration exists.
if [ ! -e "$etc_conf" ] || head -n1 "$etc_conf" | grep -qxF "$marker"; then
    mkdir -p /etc/slurm
    cp "$conf" "$etc_conf"
else
    log "$etc_conf belongs to a site: leaving it; use SLURM_CONF=$conf"
fi

# --- munge ----------------------------------------------------------------------------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    key=/etc/munge/munge.key
    if [ ! -s "$key" ]; then
        log "creating $key"
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then mungekey --create --keyfile="$key"; else
            dd if=/dev/urandom of="$key" bs=1 count=1024 2>/dev/null; fi
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge "$key" /run/munge /var/lib/munge /var/log/munge /etc/munge
    chmod 400 "$key"
    chmod 700 /etc/munge
    chmod 755 /run/munge
    runuser -u munge -- munged || die "munged failed to start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munge does not work"
fi

# --- daemons --------------------------------------------------------------------------------------
slurmctld -f "$conf" || die "slurmctld failed: $(tail -n 5 "$state/slurmctld.log" 2>/dev/null)"
slurmd -f "$conf" || die "slurmd failed: $(tail -n 5 "$state/slurmd.log" 2>/dev/null)"

deadline=$((SECONDS + timeout))
until healthy; do
    if [ $SECONDS -ge $deadline ]; then
        log "node $host is '$(node_state)' after ${timeout}s"
        tail -n 15 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
        exit 1
    fi
    # A node left DOWN/DRAIN by a previous run comes back with RESUME.
    case "$(node_state)" in down* | drain*)
        SLURM_CONF=$conf scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
log "cluster brainsim-local is up (node $host, partition debug, state $state)"
print_settings 1
