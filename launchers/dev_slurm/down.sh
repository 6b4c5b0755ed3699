#!/usr/bin/env bash
# Stop the dev Slurm cluster started by up.sh (only its own daemons) and, with --purge, delete its state.
set -uo pipefail
DIR=${DEV_SLURM_DIR:-/tmp/ehpc-slurm}
export SLURM_CONF="$DIR/slurm.conf"
scancel --user=root >/dev/null 2>&1 || true
for pidfile in "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid" "$DIR/run/slurmdbd.pid" \
               "$DIR/run/mysqld.pid" "$DIR/munge/munged.pid"; do
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
done
sleep 1
pkill -f "slurmd -N n[12] -f $DIR" 2>/dev/null
pkill -f "mariadbd.*$DIR/db" 2>/dev/null
if [ "${1:-}" = "--purge" ]; then rm -rf "$DIR"; fi
echo "dev_slurm: down" >&2
