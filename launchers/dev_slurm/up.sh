#!/usr/bin/env bash
# Start a real two-node Slurm cluster on this machine, on loopback: munge, a private MariaDB,
# slurmdbd, slurmctld and two slurmd (n1, n2) with 4 fake GPUs each. For tests, CI and laptops.
#
#   source <(bash launchers/dev_slurm/up.sh)      # prints `export SLURM_CONF=...`
#   bash launchers/dev_slurm/down.sh
#
# Everything lives in $DEV_SLURM_DIR (default /tmp/ehpc-slurm); /etc/slurm is not touched.
# Needs root (daemons, mknod). Idempotent: a running cluster is left as it is.
set -euo pipefail
DIR=${DEV_SLURM_DIR:-/tmp/ehpc-slurm}
PARTITION=${DEV_SLURM_PARTITION:-debug}
CPUS=${DEV_SLURM_CPUS:-$(nproc)}
MEM_MB=${DEV_SLURM_MEM_MB:-4096}
# The site's energy accounting: none (the default: what tests expect), or rapl (Slurm's own
# acct_gather_energy/rapl plugin reading /dev/cpu/N/msr; scripts/record_site_accounting.sh puts
# files there that stand in for MSRs, which a VM does not expose).
ENERGY=${DEV_SLURM_ENERGY:-none}
# Jobs in cgroups of their own (task/cgroup, cgroup v1, as dev-slurm-notes.md found working here):
# a job's CPU time is then its cgroup's (energy_hpc's attribution reads it). auto: where the
# v1 cpuacct controller is mounted writable; off: proctrack/linuxproc, no cgroup.
CGROUP=${DEV_SLURM_CGROUP:-auto}
if [ "$CGROUP" = auto ]; then
  if [ -w /sys/fs/cgroup/cpuacct ] && [ -w /sys/fs/cgroup/freezer ]; then CGROUP=v1; else CGROUP=off; fi
fi
case "$CGROUP" in
  v1) PROCTRACK=$'ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup'; GATHER=jobacct_gather/cgroup ;;
  off) PROCTRACK=$'ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none'; GATHER=jobacct_gather/linux ;;
  *) echo "dev_slurm: DEV_SLURM_CGROUP=$CGROUP; use auto, v1 or off" >&2; exit 2 ;;
esac
case "$ENERGY" in
  none) ENERGY_CONF="JobAcctGatherType=$([ "$CGROUP" = v1 ] && echo "$GATHER" || echo jobacct_gather/none)" ;;
  rapl) ENERGY_CONF="JobAcctGatherType=$GATHER"$'\nJobAcctGatherFrequency=energy=1\nAcctGatherEnergyType=acct_gather_energy/rapl\nAcctGatherNodeFreq=1' ;;
  *) echo "dev_slurm: DEV_SLURM_ENERGY=$ENERGY; use none or rapl" >&2; exit 2 ;;
esac
log() { echo "dev_slurm: $*" >&2; }
# A step that does not come up stops the script with its log, so CI shows why instead of skipping.
fail() {
  log "FAILED: $1"
  for f in "${@:2}"; do [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 30 "$f" >&2; }; done
  exit 1
}
# A pid file or socket left by a daemon that is gone (a reboot, a killed session) must not be
# mistaken for a live one.
clear_stale() {  # clear_stale PIDFILE [SOCKET...]
  local pidfile=$1; shift
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then rm -f "$pidfile"; fi
  if [ ! -f "$pidfile" ]; then rm -f "$@"; fi
}

# Every daemon is asked, not only the controller: a cluster whose accounting died (MariaDB or
# slurmdbd) still answers sinfo, but sacct fails and submitit cannot see job states. Whatever is
# dead is started again below; what runs is left as it is.
healthy() {
  [ -f "$DIR/slurm.conf" ] || return 1
  local sock="$DIR/munge/munge.sock"
  munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 || { log "munged is not answering"; return 1; }
  mariadb-admin --no-defaults --socket="$DIR/run/mysqld.sock" -uroot ping >/dev/null 2>&1 \
    || { log "MariaDB (accounting store) is not answering"; return 1; }
  pgrep -x slurmdbd >/dev/null || { log "slurmdbd is not running"; return 1; }
  SLURM_CONF="$DIR/slurm.conf" scontrol ping 2>/dev/null | grep -q UP || { log "slurmctld is not answering"; return 1; }
  SLURM_CONF="$DIR/slurm.conf" sacct -n -X -S now-1minutes >/dev/null 2>&1 || { log "sacct gets no answer from accounting"; return 1; }
  for n in n1 n2; do pgrep -f "slurmd -N $n" >/dev/null || { log "slurmd $n is not running"; return 1; }; done
  [ "$(SLURM_CONF="$DIR/slurm.conf" sinfo -h -N -o '%T' 2>/dev/null | grep -cE 'idle|mix|alloc')" -ge 2 ] \
    || { log "nodes n1/n2 are not both up"; return 1; }
}
# Start a daemon detached from whoever runs this script: its own session, stdin from /dev/null,
# stdout/stderr to its log, and every other inherited descriptor closed (a caller's lock file, a
# CI pipe) so that nothing the caller holds stays held until the daemon dies.
spawn() {  # spawn LOGFILE COMMAND...
  local logfile=$1; shift
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid "$@" </dev/null >>"$logfile" 2>&1
  ) &
}
if healthy; then
  log "already running ($DIR): munge, MariaDB, slurmdbd, slurmctld, sacct, slurmd n1 and n2 answer"
  echo "export SLURM_CONF=$DIR/slurm.conf"
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v mariadbd >/dev/null \
   || ! command -v slurmdbd >/dev/null; then
  log "installing slurm-wlm, munge, slurmdbd, mariadb-server (Debian packages; log: $DIR/log/apt.log)"
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$DIR/log"
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd \
      slurm-client munge slurmdbd mariadb-server; } >"$DIR/log/apt.log" 2>&1 \
    || fail "installing the Debian packages" "$DIR/log/apt.log"
fi

mkdir -p "$DIR"/{munge,db,spool,log,run,dev,state}
chmod 0755 "$DIR" "$DIR/munge"

# --- munge, private key and socket
if [ ! -f "$DIR/munge/munge.key" ]; then
  dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$DIR/munge/munge.key"
fi
if ! pgrep -f "munged.*$DIR/munge/munge.sock" >/dev/null; then
  rm -f "$DIR/munge/munged.pid"
  spawn "$DIR/log/munged.out" munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.sock" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munge.seed" --force
fi
SOCK="$DIR/munge/munge.sock"
for _ in $(seq 40); do munge -n -S "$SOCK" 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1 && break; sleep 0.25; done
munge -n -S "$SOCK" 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1 || fail "munged does not answer on $SOCK" "$DIR/log/munged.log"

# --- MariaDB for accounting (sacct; submitit needs it to see failed jobs)
if [ ! -d "$DIR/db/mysql" ]; then
  mariadb-install-db --no-defaults --datadir="$DIR/db" --user=root --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1
fi
db_ping() { mariadb-admin --no-defaults --socket="$DIR/run/mysqld.sock" -uroot ping >/dev/null 2>&1; }
if ! pgrep -f "mariadbd.*$DIR/db" >/dev/null; then
  rm -f "$DIR/run/mysqld.sock" "$DIR/run/mysqld.pid"
  # its own session (setsid): it must outlive the shell, terminal or CI step that started it
  spawn "$DIR/log/mariadb.log" mariadbd --no-defaults --datadir="$DIR/db" --port=13306 \
     --bind-address=127.0.0.1 --socket="$DIR/run/mysqld.sock" --pid-file="$DIR/run/mysqld.pid" --user=root
fi
for _ in $(seq 120); do db_ping && break; sleep 0.5; done
db_ping || fail "MariaDB (accounting store) did not come up on $DIR/run/mysqld.sock" "$DIR/log/mariadb.log"
mariadb --no-defaults --socket="$DIR/run/mysqld.sock" -uroot >/dev/null <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmdev';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdev';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

# --- fake GPUs: character devices, as gres.conf needs
for i in 0 1 2 3; do [ -e "$DIR/dev/nvidia$i" ] || mknod "$DIR/dev/nvidia$i" c 1 3; done

cat >"$DIR/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=16819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=13306
StorageUser=slurm
StoragePass=slurmdev
StorageLoc=slurm_acct_db
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
CONF
chmod 600 "$DIR/slurmdbd.conf"

cat >"$DIR/slurm.conf" <<CONF
ClusterName=devcluster
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
CommunicationParameters=NoInAddrAny
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
$PROCTRACK
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
$ENERGY_CONF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=16819
AccountingStoragePass=$SOCK
JobCompType=jobcomp/none
GresTypes=gpu
AccountingStorageTRES=gres/gpu
KillWait=5
InactiveLimit=0
MinJobAge=30
MaxArraySize=1001
NodeName=n1 NodeAddr=127.0.0.1 NodeHostname=$(hostname) Port=17001 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:4 State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 NodeHostname=$(hostname) Port=17002 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:4 State=UNKNOWN
PartitionName=$PARTITION Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
PartitionName=other Nodes=n1,n2 Default=NO MaxTime=INFINITE State=UP
CONF
if [ "$CGROUP" = v1 ]; then
  cat >"$DIR/cgroup.conf" <<CONF
CgroupPlugin=cgroup/v1
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
CONF
else
  rm -f "$DIR/cgroup.conf"
fi
cat >"$DIR/gres.conf" <<CONF
NodeName=n[1-2] Name=gpu File=$DIR/dev/nvidia[0-3]
CONF
export SLURM_CONF="$DIR/slurm.conf"

clear_stale "$DIR/run/slurmdbd.pid"
clear_stale "$DIR/run/slurmctld.pid"
for n in n1 n2; do clear_stale "$DIR/run/slurmd-$n.pid"; done
pgrep -x slurmdbd >/dev/null || spawn "$DIR/log/slurmdbd.out" slurmdbd
for _ in $(seq 80); do ss -ltn 2>/dev/null | grep -q ':16819 ' && break; sleep 0.25; done
ss -ltn 2>/dev/null | grep -q ':16819 ' || fail "slurmdbd is not listening on 16819" "$DIR/log/slurmdbd.log"
fresh_ctld=0
pgrep -x slurmctld >/dev/null || { spawn "$DIR/log/slurmctld.out" slurmctld -f "$DIR/slurm.conf"; fresh_ctld=1; }
for _ in $(seq 80); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.25; done
scontrol ping 2>/dev/null | grep -q UP || fail "slurmctld does not answer" "$DIR/log/slurmctld.log"
# Jobs saved in the state of a controller that died with its daemons (a killed session, a reboot)
# have no processes left; they would hold the nodes, so they are cancelled.
if [ "$fresh_ctld" = 1 ] && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
  log "cancelling $(squeue -h -o %i | wc -l) job(s) left from a previous run"
  scancel --user="$(id -un)" >/dev/null 2>&1 || true
fi
for n in n1 n2; do
  pgrep -f "slurmd -N $n" >/dev/null || spawn "$DIR/log/slurmd-$n.out" slurmd -N "$n" -f "$DIR/slurm.conf"
done

for _ in $(seq 120); do
  states=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u || true)
  if [ "$(echo "$states" | grep -cE 'idle|mix|alloc')" -ge 2 ]; then break; fi
  sleep 0.5
done
if [ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -cE 'idle|mix|alloc')" -lt 2 ]; then
  scontrol update nodename=n1,n2 state=resume >/dev/null 2>&1 || true
  sleep 1
fi
sinfo -N >&2
[ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -cE 'idle|mix|alloc')" -ge 2 ] \
  || fail "nodes n1/n2 are not idle" "$DIR/log/slurmctld.log" "$DIR/log/slurmd-n1.log" "$DIR/log/slurmd-n2.log"
for _ in $(seq 40); do sacct -n -X -S now-1minutes >/dev/null 2>&1 && break; sleep 0.5; done
sacct -n -X -S now-1minutes >/dev/null 2>&1 \
  || fail "sacct gets no answer from accounting (slurmdbd/MariaDB)" "$DIR/log/slurmdbd.log" "$DIR/log/mariadb.log"
log "up: export SLURM_CONF=$DIR/slurm.conf"
echo "export SLURM_CONF=$DIR/slurm.conf"
