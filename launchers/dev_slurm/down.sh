#!/usr/bin/env bash
# Stop the dev Slurm cluster started by up.sh (only its own daemons) and, with --purge, delete its state.
set -uo pipefail
DIR=${DEV_SLURM_DIR:-/tmp/ehpc-slurm}
export SLURM_CONF="$DIR/slurm.conf"
scancel --user=root >/dev/null 2>&1 || true
pids=()
for pidfile in "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid" "$DIR/run/slurmdbd.pid" \
               "$DIR/run/mysqld.pid" "$DIR/munge/munged.pid"; do
  [ -f "$pidfile" ] && pid=$(cat "$pidfile") && kill "$pid" 2>/dev/null && pids+=("$pid")
done
pkill -f "slurmd -N n[12] -f $DIR" 2>/dev/null
pkill -f "mariadbd.*$DIR/db" 2>/dev/null
# wait until they are gone (slurmctld saves its state first): an up.sh right after must not
# find a daemon on its way out and take it for a running one
for _ in $(seq 60); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  pgrep -f "slurmd -N n[12] -f $DIR|mariadbd.*$DIR/db" >/dev/null && alive=1
  [ "$alive" = 0 ] && break
  sleep 0.25
done
if [ "${1:-}" = "--purge" ]; then rm -rf "$DIR"; fi
echo "dev_slurm: down" >&2
