#!/usr/bin/env bash
# Record what a site with Slurm's own energy accounting (acct_gather_energy/rapl) gives sacct and
# scontrol, on the dev Slurm: the real plugin, real slurmd/slurmstepd/slurmdbd, real sacct. Only the
# hardware is stood in for: this VM exposes no MSRs, so /dev/cpu/N/msr become regular files whose
# RAPL registers (power unit 0x606, package 0x611, DRAM 0x619) a writer advances at a steady
# 40 W + 5 W (scripts/fake_msr.py). Writes tests/data/sacct/*_rapl_dev_slurm.txt, then puts the
# dev Slurm back as the tests expect it (no energy gathering). Needs root. About a minute.
#
#   bash scripts/record_site_accounting.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=tests/data/sacct
RUN=$(mktemp -d /tmp/ehpc-record.XXXX)
export SLURM_CONF=${DEV_SLURM_DIR:-/tmp/ehpc-slurm}/slurm.conf

restore() {
  bash launchers/dev_slurm/down.sh
  [ -n "${WRITER:-}" ] && kill "$WRITER" 2>/dev/null || true
  rm -f /dev/cpu/[0-9]*/msr
  bash launchers/dev_slurm/up.sh >/dev/null
}
trap restore EXIT

[ -e /dev/cpu/0/msr ] && [ ! -f /dev/cpu/0/msr ] && {
  echo "record_site_accounting: this machine has real MSRs; the recording would read them" >&2; exit 1; }
bash launchers/dev_slurm/down.sh
python scripts/fake_msr.py 40 5 &
WRITER=$!
sleep 1
DEV_SLURM_ENERGY=rapl bash launchers/dev_slurm/up.sh >/dev/null

# a job with two steps, one over both nodes and one on the first (what submitit's srun and a
# user's own srun give)
job=$(sbatch --parsable -N 2 -n 2 -t 2 -o /dev/null --wrap "srun sleep 6; srun -n 1 sleep 3")
while [ -n "$(squeue -h -j "$job")" ]; do sleep 0.5; done
sleep 2  # slurmdbd receives the last step's record
sacct -j "$job" -P --format=JobID,ElapsedRaw,ConsumedEnergyRaw,NodeList >"$OUT/rapl_dev_slurm.txt"
scontrol show config | grep -E '^AcctGather(Energy|Node)' >"$OUT/scontrol_rapl_dev_slurm.txt"

# energy_hpc's own job on that site: what its meta.json keeps of the accounting
python -m energy_hpc cluster=dev_slurm gpus=0 "out_dir=$RUN" repetitions=2 progress=false \
  energy.interval_s=1 >/dev/null
python - "$RUN" "$OUT/meta_rapl_dev_slurm.json" <<'PY'
import json, sys
from pathlib import Path
[meta] = list(Path(sys.argv[1]).glob("cells/*/meta.json"))
Path(sys.argv[2]).write_text(json.dumps(json.loads(meta.read_text())["slurm_accounting"], indent=1) + "\n")
PY
cat "$OUT/rapl_dev_slurm.txt" "$OUT/scontrol_rapl_dev_slurm.txt" >&2
echo "recorded: $OUT/rapl_dev_slurm.txt, scontrol_rapl_dev_slurm.txt, meta_rapl_dev_slurm.json" >&2
