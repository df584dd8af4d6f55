#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm sweep test (and for trying
# `hydra.launcher.name=slurm` without a cluster). Everything lives under DIR: the munge key and
# socket, slurm.conf, the controller's state, slurmd's spool, pid and log files.
#
#   tests/slurm/one_node.sh start DIR   # writes DIR/slurm.conf, starts munged, slurmctld, slurmd,
#                                       # waits until the node is idle; then: export SLURM_CONF=DIR/slurm.conf
#   tests/slurm/one_node.sh stop DIR    # stops the daemons started in DIR (by their pid files)
#
# Needs Debian's slurm-wlm and munge (see .ci/run). Runs as root, as CI does (SlurmUser=root).
# Ports: SLURM_TEST_PORT (default 6817) for slurmctld and the next one for slurmd.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

stop_pidfile() {
  local file=$1
  [ -f "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  port=${SLURM_TEST_PORT:-6817}
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  chmod 700 "$dir/munge"
  # The munge key: 1 KiB of randomness, readable by its owner only.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" --force
  cpus=$(nproc)
  mem_mb=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=textzoo-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=localhost CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -c -f "$dir/slurm.conf"
  slurmd -N localhost -f "$dir/slurm.conf"
  for _ in $(seq 1 120); do
    state=$(sinfo -h -N -o "%t" 2>/dev/null | head -n1 || true)
    if [ "$state" = "idle" ]; then
      echo "one-node Slurm up: export SLURM_CONF=$dir/slurm.conf"
      exit 0
    fi
    sleep 0.5
  done
  echo "Slurm node not idle after 60 s (state: ${state:-none}); logs in $dir/log:" >&2
  tail -n 20 "$dir"/log/*.log >&2 || true
  exit 1
  ;;
stop)
  [ -d "$dir" ] || exit 0
  stop_pidfile "$dir/slurmd.pid"
  stop_pidfile "$dir/slurmctld.pid"
  stop_pidfile "$dir/munge/munged.pid"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
