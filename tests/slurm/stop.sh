#!/usr/bin/env bash
# Stop the test SLURM that tests/slurm/start.sh started: its daemons by their recorded PIDs
# (SIGTERM; SIGKILL after 20 s), and the /etc/slurm/slurm.conf link if start.sh made it.
#
#   tests/slurm/stop.sh [FOLDER]     # FOLDER: start.sh's state folder, default $V1RSA_SLURM_DIR
#
# Set V1RSA_SLURM_KEEP=1 to keep the folder (logs) afterwards; by default it is removed.
set -uo pipefail

DIR=${1:-${V1RSA_SLURM_DIR:-}}
[[ -n $DIR && -f $DIR/pids ]] || { echo "stop.sh: no $DIR/pids: nothing to stop" >&2; exit 0; }

# SIGTERM to all, newest first (slurmd, slurmctld, slurmdbd, mariadbd, munged); SIGKILL to any
# still there after 20 s.
# A PID counts only while it is that daemon and alive (/proc/PID/stat: "PID (NAME) STATE ..."):
# never a reused PID, nor a zombie that no init reaps.
ours() { [[ $(cat "/proc/$1/stat" 2>/dev/null) == "$1 ($2) "[!Z]* ]]; }
mapfile -t daemons < <(tac "$DIR/pids")
for entry in "${daemons[@]}"; do
    ours "${entry%% *}" "${entry#* }" && kill -TERM "${entry%% *}"
done
for entry in "${daemons[@]}"; do
    pid=${entry%% *}
    ours "$pid" "${entry#* }" || continue
    for _ in $(seq 100); do
        ours "$pid" "${entry#* }" || break
        sleep 0.2
    done
    if ours "$pid" "${entry#* }"; then
        echo "stop.sh: ${entry#* } ($pid) ignored SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
done

if [[ -f $DIR/linked && $(readlink /etc/slurm/slurm.conf) == "$DIR/etc/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf
fi
rm -f "$DIR/pids"
if [[ ${V1RSA_SLURM_KEEP:-0} == 1 || ! -f $DIR/.v1rsa-slurm ]]; then
    echo "stop.sh: SLURM stopped; logs kept in $DIR/log" >&2
else
    rm -rf "$DIR"
    echo "stop.sh: SLURM stopped; $DIR removed" >&2
fi
