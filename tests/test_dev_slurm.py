"""The dev Slurm scripts themselves: daemons that outlive their caller and hold none of its files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slurm]

DIR = Path(os.environ.get("DEV_SLURM_DIR", "/tmp/ehpc-slurm"))


def _daemon_pids() -> dict[str, int]:
    pids = {}
    for name, pidfile in [("munged", DIR / "munge" / "munged.pid"),
                          ("mariadbd", DIR / "run" / "mysqld.pid"),
                          ("slurmdbd", DIR / "run" / "slurmdbd.pid"),
                          ("slurmctld", DIR / "run" / "slurmctld.pid"),
                          ("slurmd n1", DIR / "run" / "slurmd-n1.pid"),
                          ("slurmd n2", DIR / "run" / "slurmd-n2.pid")]:
        if pidfile.is_file():
            pids[name] = int(pidfile.read_text().split()[0])
    return pids


def _open_files(pid: int) -> dict[int, str]:
    out = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out[int(fd.name)] = os.readlink(fd)
        except OSError:
            continue
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="starting the dev cluster needs root")
def test_daemons_keep_no_descriptor_of_the_process_that_started_them(dev_slurm, tmp_path):
    """Started under e.g. ``flock LOCK bash scripts/test.sh``, a daemon that kept the lock's
    descriptor would hold the lock until it died. Restart the cluster from a shell holding an
    extra open file (fd 9) and a pipe on stdout; no daemon may keep either."""
    marker = tmp_path / "held.lock"
    subprocess.run(["bash", str(REPO / "launchers/dev_slurm/down.sh")], check=True,
                   capture_output=True, timeout=60)
    proc = subprocess.run(
        ["bash", "-c", f"exec 9>{marker}; bash {REPO / 'launchers/dev_slurm/up.sh'}"],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "export SLURM_CONF=" in proc.stdout  # the caller's pipe closed: the command returned
    pids = _daemon_pids()
    assert set(pids) == {"munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd n1", "slurmd n2"}
    for name, pid in pids.items():
        files = _open_files(pid)
        assert str(marker) not in files.values(), f"{name} (pid {pid}) keeps the caller's fd: {files}"
        assert files.get(0) == "/dev/null", f"{name}: stdin {files.get(0)}"
        assert not any(target.startswith("pipe:") for fd, target in files.items() if fd <= 2), \
            f"{name} keeps the caller's pipe on its stdio: {files}"
        assert os.getsid(pid) != os.getsid(0), f"{name} runs in the caller's session"
    # and the cluster works again for the tests after this one
    assert subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
