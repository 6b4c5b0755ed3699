"""Regular files standing in for /dev/cpu/N/msr (a VM exposes no MSRs), for
scripts/record_site_accounting.sh: the registers Slurm's acct_gather_energy/rapl plugin reads
(power unit 0x606, package energy 0x611, DRAM energy 0x619), advanced at a steady power.

    python scripts/fake_msr.py PACKAGE_W DRAM_W
"""

from __future__ import annotations

import os
import struct
import sys
import time

UNIT = 0xA1003  # energy status units 2^-16 J (bits 12:8 = 16), as Intel parts report
PER_JOULE = 2 ** 16
ENERGY_REGISTERS = (0x611, 0x619)  # 32-bit counters that wrap


def put(f, offset: int, value: int) -> None:
    f.seek(offset)
    f.write(struct.pack("<Q", value & 0xFFFFFFFF if offset in ENERGY_REGISTERS else value))


def main() -> None:
    package_w, dram_w = float(sys.argv[1]), float(sys.argv[2])
    files = []
    for cpu in range(os.cpu_count() or 1):
        f = open(f"/dev/cpu/{cpu}/msr", "w+b")  # noqa: SIM115 - held open while it runs
        f.truncate(4096)
        put(f, 0x606, UNIT)
        files.append(f)
    t0 = time.time()
    while True:
        t = time.time() - t0
        for f in files:
            put(f, 0x611, int(package_w * t * PER_JOULE))
            put(f, 0x619, int(dram_w * t * PER_JOULE))
            f.flush()
        time.sleep(0.2)


if __name__ == "__main__":
    main()
