"""A private Ray cluster inside one Slurm allocation: head on the first node, a worker per other node.

Private means: bound to the allocation's node addresses, no dashboard, per-job temp dir and
ports (two jobs on one node never collide), token authentication where the installed Ray has
it, and teardown of this job's Ray processes only (``ray stop`` would kill other jobs' too).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from energy_hpc.errors import UserError
from energy_hpc.results import atomic_write_text
from energy_hpc.safe_paths import open_file, read_text

log = logging.getLogger(__name__)

RAY_TOKEN_FILE = "ray_token"
RAY_ADDRESS_FILE = "ray_head.json"
RAY_DONE_FILE = "ray_done"


class RayStartError(UserError):
    """Ray failed to start or join on a node."""


def node_address(node: str) -> str:
    """The address Slurm uses for a node (NodeAddr), else its resolved hostname."""
    try:
        out = subprocess.run(["scontrol", "show", "node", node, "-o"], capture_output=True,
                             text=True, timeout=10).stdout
        for item in out.split():
            if item.startswith("NodeAddr="):
                return item.split("=", 1)[1]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return socket.gethostbyname(node)
    except OSError:
        return "127.0.0.1"


def free_ports(address: str, n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind((address, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def ray_auth_supported() -> bool:
    """Whether the installed Ray has token authentication, without importing Ray.

    Ray reads RAY_AUTH_MODE when it is imported, so the token must be in the environment first.
    """
    import importlib.util

    spec = importlib.util.find_spec("ray")
    if spec is None or not spec.origin:
        return False
    return (Path(spec.origin).parent / "_private" / "authentication").is_dir()


def _ray_bin() -> str:
    exe = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    if not Path(exe).exists():
        raise RayStartError("the 'ray' command is not installed; pip install 'energy_hpc[slurm]'")
    return exe


@dataclass
class RayNode:
    """One ``ray start --block`` process group of this job on this node."""

    node: str
    process: subprocess.Popen
    log_path: Path
    resources: tuple[int, int] = (0, 0)  # the CPUs and GPUs it offers, to start it again alike

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the job's Ray process group, then SIGKILL what is left.

        ``ray start --block``, the GCS and the raylet outlive SIGTERM for tens of seconds (20 s
        measured here); nothing of this private, per-job cluster needs a graceful end.
        """
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:  # the group outlives its leader while the GCS or raylet still runs
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("node %s: Ray process %d did not exit after SIGKILL", self.node, self.process.pid)


def job_key() -> str:
    """What tells this job's Ray apart from other jobs' on a node: the Slurm job id (else the pid)."""
    return str(os.environ.get("SLURM_JOB_ID", os.getpid()))


def worker_port_range(node: str) -> tuple[int, int]:
    """A 300-port block for Ray's workers below the ephemeral range, chosen per (job, node).

    Ray refuses to start when its worker range overlaps a port handed to another component, so
    the block must not come from the ephemeral range the other ports are picked from.
    """
    import zlib

    key = f"{job_key()}-{node}".encode()
    start = 20000 + (zlib.crc32(key) % 40) * 300
    return start, start + 299


def _common_args(address: str, node: str, cpus: int, gpus: int, temp_dir: Path) -> list[str]:
    p = free_ports(address, 6)
    lo, hi = worker_port_range(node)
    return [
        f"--node-ip-address={address}", f"--num-cpus={cpus}", f"--num-gpus={gpus}",
        f"--resources={json.dumps({f'slurm_{node}': 1})}", f"--temp-dir={temp_dir}",
        f"--node-manager-port={p[0]}", f"--object-manager-port={p[1]}",
        f"--metrics-export-port={p[2]}", f"--runtime-env-agent-port={p[3]}",
        f"--dashboard-agent-listen-port={p[4]}", f"--dashboard-agent-grpc-port={p[5]}",
        f"--min-worker-port={lo}", f"--max-worker-port={hi}",
        "--object-store-memory=200000000", "--disable-usage-stats", "--block",
    ]


def _start(args: list[str], env: dict[str, str], log_path: Path, node: str) -> RayNode:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open_file(log_path, "w")
    proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    return RayNode(node, proc, log_path)


def ray_env(job_dir: Path, create: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    token_file = job_dir / RAY_TOKEN_FILE
    if ray_auth_supported():
        if create:
            job_dir.mkdir(parents=True, exist_ok=True)
            with open_file(token_file, "w", perm=0o600) as fh:
                fh.write(secrets.token_hex(32))
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = read_text(token_file).strip()
        os.environ["RAY_AUTH_MODE"] = env["RAY_AUTH_MODE"]
        os.environ["RAY_AUTH_TOKEN"] = env["RAY_AUTH_TOKEN"]
    return env


# Ray puts unix sockets at <temp dir>/session_<date>_<time>_<pid>/sockets/plasma_store, and a
# socket path may not exceed 107 bytes: that leaves about 44 for the temp dir.
RAY_TEMP_DIR_MAX = 44


def ray_temp_dir(name: str) -> Path:
    """This job's Ray temp dir under ``$ENERGY_HPC_RAY_TMP`` (default /tmp), short enough for Ray."""
    base = os.environ.get("ENERGY_HPC_RAY_TMP", "/tmp")
    path = Path(base) / name
    if len(str(path)) > RAY_TEMP_DIR_MAX:
        raise RayStartError(
            f"ENERGY_HPC_RAY_TMP={base!r} is too long for Ray: {path} has {len(str(path))} characters, "
            f"and Ray's socket paths below it need it to be at most {RAY_TEMP_DIR_MAX}; point "
            "ENERGY_HPC_RAY_TMP at a short node-local directory such as /tmp or $TMPDIR"
        )
    return path


START_ATTEMPTS = 3  # a port picked free can be taken before Ray binds it (seen on a busy node)


def _log_name(node: str, attempt: int) -> str:
    """A node's Ray log, one per attempt: ``ray-n1.log``, then ``ray-n1-2.log``…"""
    return f"ray-{node}.log" if attempt == 1 else f"ray-{node}-{attempt}.log"


def log_tail(path: Path, lines: int = 6) -> str:
    """The last lines of a Ray log, for an error message (empty when unreadable)."""
    try:
        tail = read_text(path).strip().splitlines()[-lines:]
    except (OSError, UserError):
        return ""
    return " | ".join(line.strip() for line in tail if line.strip())


def start_head(job_dir: Path, node: str, cpus: int, gpus: int) -> tuple[RayNode, str]:
    """The head on this node; started again on fresh ports when Ray exits before it listens."""
    address = node_address(node)
    temp_dir = ray_temp_dir(f"ehr-{job_key()}")
    env = ray_env(job_dir, create=True)
    for attempt in range(1, START_ATTEMPTS + 1):
        [port, client_port] = free_ports(address, 2)
        # The head's autoscaler and dashboard serve Prometheus metrics on fixed ports (44217,
        # 44227) unless told otherwise; per-job ports keep two jobs' heads on one node apart.
        env["AUTOSCALER_METRIC_PORT"], env["DASHBOARD_METRIC_PORT"] = map(str, free_ports("", 2))
        args = [_ray_bin(), "start", "--head", f"--port={port}", "--include-dashboard=false",
                f"--ray-client-server-port={client_port}",
                *_common_args(address, node, cpus, gpus, temp_dir)]
        head = _start(args, env, job_dir / _log_name(node, attempt), node)
        try:
            _wait_port(address, port, head, timeout=60)
        except RayStartError as exc:
            head.stop()
            if head.process.returncode is None or attempt == START_ATTEMPTS:
                raise
            log.warning("%s; starting it again on other ports (attempt %d of %d)", exc,
                        attempt + 1, START_ATTEMPTS)
            continue
        gcs = f"{address}:{port}"
        atomic_write_text(job_dir / RAY_ADDRESS_FILE, json.dumps({"address": gcs, "node": node}))
        return head, gcs
    raise AssertionError("unreachable")


def start_worker(job_dir: Path, node: str, cpus: int, gpus: int, timeout: float = 120,
                 attempt: int = 1) -> RayNode:
    deadline = time.monotonic() + timeout
    head_file = job_dir / RAY_ADDRESS_FILE
    while not head_file.exists():
        if time.monotonic() > deadline:
            raise RayStartError(f"node {node}: the Ray head did not publish its address in {timeout:.0f} s "
                                f"({head_file}); see the head's log in {job_dir}")
        time.sleep(0.2)
    gcs = json.loads(read_text(head_file))["address"]
    address = node_address(node)
    temp_dir = ray_temp_dir(f"ehr-{job_key()}-{node}")
    args = [_ray_bin(), "start", f"--address={gcs}", *_common_args(address, node, cpus, gpus, temp_dir)]
    worker = _start(args, ray_env(job_dir, create=False), job_dir / _log_name(node, attempt), node)
    worker.resources = (cpus, gpus)
    return worker


def _wait_port(address: str, port: int, proc: RayNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            tail = log_tail(proc.log_path)
            raise RayStartError(f"node {proc.node}: Ray exited with code {proc.process.returncode}; "
                                f"see {proc.log_path}{f' (it ends: {tail})' if tail else ''}")
        with socket.socket() as s:
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.2)
    raise RayStartError(f"node {proc.node}: Ray did not listen on {address}:{port} within "
                        f"{timeout:.0f} s; see {proc.log_path}")


def wait_for_nodes(nodes: list[str], timeout: float, job_dir: Path) -> None:
    """Block until every node's ``slurm_<node>`` resource is in the cluster, or name the missing ones."""
    import ray

    deadline = time.monotonic() + timeout
    missing = nodes
    while time.monotonic() < deadline:
        have = ray.cluster_resources()
        missing = [n for n in nodes if f"slurm_{n}" not in have]
        if not missing:
            return
        time.sleep(0.5)
    logs = ", ".join(str(job_dir / f"ray-{n}.log") for n in missing)
    raise RayStartError(f"Ray node(s) {', '.join(missing)} did not join within {timeout:.0f} s; see {logs}")


def signal_done(job_dir: Path) -> None:
    (job_dir / RAY_DONE_FILE).touch()


def wait_done(job_dir: Path, worker: RayNode, poll_s: float = 0.5,
              join_timeout: float = 120) -> RayNode:
    """Worker side: keep Ray up until the head says the cell is done. A worker whose Ray exits
    first is started again (fresh ports), up to ``START_ATTEMPTS`` times; returns the one
    running at the end, for the caller to stop."""
    attempt = 1
    while not (job_dir / RAY_DONE_FILE).exists():
        if worker.process.poll() is not None:
            tail = log_tail(worker.log_path)
            if attempt >= START_ATTEMPTS:
                log.warning("Ray on %s exited early (code %s); see %s%s", worker.node,
                            worker.process.returncode, worker.log_path,
                            f" (it ends: {tail})" if tail else "")
                return worker
            attempt += 1
            log.warning("Ray on %s exited early (code %s; %s); starting it again (attempt %d of "
                        "%d)", worker.node, worker.process.returncode, tail or worker.log_path,
                        attempt, START_ATTEMPTS)
            worker = start_worker(job_dir, worker.node, *worker.resources, timeout=join_timeout,
                                  attempt=attempt)
        time.sleep(poll_s)
    return worker
