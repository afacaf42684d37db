#!/usr/bin/env bash
# Start a single-node SLURM on this machine, for testing the SLURM profile (tests/test_slurm.py).
#
#   eval "$(tests/slurm/start.sh)"      # as root; prints the exports the tests need
#   python -m pytest -q tests/test_slurm.py
#   tests/slurm/stop.sh                 # stops what start.sh started (by recorded PIDs)
#
# Needs Debian's packages (as root):
#   apt-get install -y --no-install-recommends slurm-wlm slurmctld slurmd slurm-client slurmdbd \
#       munge mariadb-server
#
# Everything listens on 127.0.0.1 only, on free ports picked at start, and keeps its state,
# logs and PID files in one folder: $V1RSA_SLURM_DIR if set (new or empty), else a new
# /tmp/v1rsa-slurm.XXXXXX. Daemons: munged, mariadbd (the accounting database), slurmdbd (so that
# `sacct` works), slurmctld and slurmd. One node, "localhost", in two partitions: `cpu` (the
# default) and `gpu`, as workflow/profiles/slurm/partitions.yaml names them. The node advertises
# twice this machine's cores ($V1RSA_SLURM_CPUS to change), so that one job's start-up (two
# snakemake processes per SLURM job) overlaps another's work, memory as configured rather than
# measured, and two fake GPUs ($V1RSA_SLURM_GPUS): a GRES "gpu" backed by links to /dev/null,
# so that `--gpus=1` requests are scheduled and accounted (gres/gpu in the jobs' TRES).
#
# SLURM's client commands find the cluster through SLURM_CONF, but the plugin's nested `srun`
# inside a job runs without it and reads /etc/slurm/slurm.conf: start.sh links that path to its
# config unless a real file is there (then it leaves it alone and warns).
set -euo pipefail

log() { echo "start.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (slurmd and the test jobs run as root)"
for tool in munged mungekey mariadbd mariadb-install-db slurmdbd slurmctld slurmd sbatch sacct \
            sacctmgr sinfo; do
    command -v "$tool" >/dev/null || die "$tool not found; install the Debian packages (see top)"
done

DIR=${V1RSA_SLURM_DIR:-$(mktemp -d /tmp/v1rsa-slurm.XXXXXX)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[[ -z $(ls -A "$DIR") ]] || die "$DIR is not empty (a SLURM from there may run: stop.sh $DIR)"
touch "$DIR/.v1rsa-slurm"  # stop.sh removes only a folder marked so
mkdir -p "$DIR"/{etc,log,run,munge,mysql,state,spool}
chmod 755 "$DIR/munge"  # the key inside stays 600
: >"$DIR/pids"
STARTED=$SECONDS

# On any failure, stop what was started so far (and keep the logs).
STOP=$(cd "$(dirname "$0")" && pwd)/stop.sh
UP=0
trap '((UP)) || { log "failed: stopping what was started; logs in $DIR/log";
                  V1RSA_SLURM_KEEP=1 "$STOP" "$DIR"; }' EXIT

start() {  # start NAME COMMAND...: run a daemon in the foreground, in the background
    "${@:2}" </dev/null >>"$DIR/log/$1.out" 2>&1 &
    echo "$! $1" >>"$DIR/pids"
}

wait_for() {  # wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds
    local what=$1 limit=$2 deadline=$((SECONDS + $2))
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what not ready after ${limit}s (logs in $DIR/log)"
        local pid name
        while read -r pid name; do  # a daemon that exited will not get ready
            kill -0 "$pid" 2>/dev/null || die "$name exited: $(tail -3 "$DIR/log/$name.out")"
        done <"$DIR/pids"
        sleep 0.2
    done
}

free_ports() {  # four free TCP ports on 127.0.0.1
    python3 - <<'EOF'
import socket
sockets = [socket.socket() for _ in range(4)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}
read -r MYSQL_PORT SLURMDBD_PORT SLURMCTLD_PORT SLURMD_PORT <<<"$(free_ports)"

# 1. munge: the authentication every SLURM daemon and client uses.
MUNGE_SOCKET=$DIR/munge/munge.socket
mungekey --create --keyfile="$DIR/munge/munge.key" --force
start munged munged --foreground --force --key-file="$DIR/munge/munge.key" \
    --socket="$MUNGE_SOCKET" --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munge.seed"
munge_ok() { munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET"; }
wait_for munged 10 munge_ok

# 2. MariaDB: the accounting database behind slurmdbd.
MYSQL_SOCKET=$DIR/run/mysqld.sock
mariadb-install-db --no-defaults --user=root --datadir="$DIR/mysql" --skip-test-db \
    --auth-root-authentication-method=socket >"$DIR/log/mariadb-install-db.log" 2>&1
start mariadbd mariadbd --no-defaults --user=root --datadir="$DIR/mysql" \
    --socket="$MYSQL_SOCKET" --bind-address=127.0.0.1 --port="$MYSQL_PORT" \
    --pid-file="$DIR/run/mariadbd.pid" --log-error="$DIR/log/mariadbd.log" \
    --skip-log-bin --innodb-buffer-pool-size=64M
wait_for mariadbd 30 mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" ping
DB_PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
mariadb --no-defaults --socket="$MYSQL_SOCKET" -u root <<EOF
CREATE DATABASE slurm_acct_db;
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF

# 3. Configuration. slurmdbd reads slurmdbd.conf next to $SLURM_CONF.
CPUS=${V1RSA_SLURM_CPUS:-$((2 * $(nproc)))}
GPUS=${V1RSA_SLURM_GPUS:-2}
# Memory as configured, not as measured (SlurmdParameters=config_overrides): the profile's rules
# ask for up to 6 GB per job; a smaller machine still schedules them (no memory is enforced).
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
((MEM_MB >= 16000)) || MEM_MB=16000
export SLURM_CONF=$DIR/etc/slurm.conf
cat >"$SLURM_CONF" <<EOF
# Written by tests/slurm/start.sh: a one-node test cluster on 127.0.0.1.
ClusterName=v1rsa
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
PlugStackConfig=$DIR/etc/plugstack.conf
# no cgroups here: track processes through /proc, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
DefMemPerCPU=1000
SlurmdParameters=config_overrides
GresTypes=gpu
# accounting through slurmdbd, so that sacct answers; it takes the munge socket from
# AccountingStoragePass (not from AuthInfo)
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$SLURMDBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:$GPUS State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
EOF
# A GRES line needs device files (a count-only line is ignored and the node drains): links to
# /dev/null stand for the GPUs.
mkdir -p "$DIR/dev"
for ((i = 0; i < GPUS; i++)); do ln -s /dev/null "$DIR/dev/gpu$i"; done
echo "NodeName=localhost Name=gpu File=$DIR/dev/gpu[0-$((GPUS - 1))]" >"$DIR/etc/gres.conf"
: >"$DIR/etc/plugstack.conf"
cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort=$SLURMDBD_PORT
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
EOF
chmod 600 "$DIR/etc/slurmdbd.conf"

# The nested srun in each job reads /etc/slurm/slurm.conf (SLURM_CONF is removed there).
if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
    log "warning: /etc/slurm/slurm.conf is a real file; left alone (jobs' srun will read it)"
else
    mkdir -p /etc/slurm
    ln -sfn "$SLURM_CONF" /etc/slurm/slurm.conf
    echo "/etc/slurm/slurm.conf" >"$DIR/linked"
fi

# 4. slurmdbd, then the cluster in the database, then the controller and the node.
start slurmdbd slurmdbd -D
wait_for slurmdbd 30 sacctmgr -i show cluster
sacctmgr -i add cluster v1rsa >/dev/null
start slurmctld slurmctld -D -i -f "$SLURM_CONF"
wait_for slurmctld 30 scontrol ping
start slurmd slurmd -D -f "$SLURM_CONF" -N localhost
node_idle() { [[ $(sinfo -h -n localhost -p cpu -o %T) == idle ]]; }
wait_for "node localhost (idle)" 30 node_idle
sacctmgr -i add account v1rsa Cluster=v1rsa Description=tests Organization=v1rsa >/dev/null
sacctmgr -i add user "$(id -un)" Account=v1rsa DefaultAccount=v1rsa >/dev/null

UP=1
log "SLURM up in $((SECONDS - STARTED)) s: $CPUS CPUs, ${MEM_MB} MB, gres gpu:$GPUS; state in $DIR"
echo "export SLURM_CONF=$SLURM_CONF"
echo "export V1RSA_SLURM_DIR=$DIR"
