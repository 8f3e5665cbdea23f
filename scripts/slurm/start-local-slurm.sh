#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine (munge + slurmctld + slurmd on localhost), for the
# sweep's Slurm integration test and for trying job arrays without a cluster. Needs root and Debian's
# slurm-wlm and munge packages (installed here when missing). Idempotent: a running cluster is left alone.
# State lives under ${QUECC_SLURM_DIR:-/tmp/quecc-slurm}; stop it with scripts/slurm/stop-local-slurm.sh.
set -euo pipefail
dir=${QUECC_SLURM_DIR:-/tmp/quecc-slurm}

if [ "$(id -u)" != 0 ]; then echo "start-local-slurm: needs root (it starts munged, slurmctld and slurmd)" >&2; exit 1; fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|allocated'; then echo "start-local-slurm: already running"; exit 0; fi

mkdir -p "$dir"/{state,spool,log} /etc/slurm /run/munge /var/lib/munge /var/log/munge
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

# munge: a key, then the daemon (as root with --force: this is a throwaway single-node setup).
[ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || munged --force

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=quecc
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# No cgroup.conf: 22.05 has no "disabled" cgroup plugin, and without the file slurmd loads cgroup/v1 and never uses it (proctrack/linuxproc, task/none).
rm -f /etc/slurm/cgroup.conf
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
alive "$dir/slurmctld.pid" || slurmctld -c
alive "$dir/slurmd.pid" || slurmd
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|allocated'; then echo "start-local-slurm: node $host up ($cpus CPUs)"; exit 0; fi
  sleep 1
done
echo "start-local-slurm: the node did not come up; see $dir/log/" >&2
tail -n 20 "$dir"/log/*.log >&2 || true
exit 1
