"""A dockerd of our own for `make sam-local`: own data root, exec root and socket; no bridge, no iptables.

It shares nothing with a Docker the host may run: images live in .hookline/sam-local/docker (kept between runs),
sockets and state under /run/hookline-sam-local-<id> (removed after). Stopping it removes every container, stops
dockerd by its PID (its containerd and shims with it), then unmounts what dockerd leaves behind (the nsfs mount of
the host's network namespace, the propagation mount of its data root) and reports anything still there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.sam_local.system import kill_pids, mounts_under, processes_mentioning, stop_process, unmount_under

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Dockerd", "DockerdError", "dockerd_paths", "leftovers", "private_dockerd"]

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0


class DockerdError(RuntimeError):
    """Our dockerd did not start, or did not answer."""


@dataclass(frozen=True)
class Dockerd:
    """Where our dockerd keeps its images (``data_root``), its state and sockets (``exec_root``)."""

    data_root: Path
    exec_root: Path

    @property
    def host(self) -> str:
        """The DOCKER_HOST value for our daemon."""
        return f"unix://{self.exec_root / 'docker.sock'}"

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against our daemon (output captured)."""
        return subprocess.run(
            ["docker", "--host", self.host, *args], capture_output=True, text=True, check=check, timeout=600
        )


def dockerd_paths(project: Path) -> Dockerd:
    """Paths for this project's dockerd: the exec root is short (socket paths) and unique to the project."""
    digest = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:10]
    return Dockerd(
        data_root=project / ".hookline" / "sam-local" / "docker", exec_root=Path(f"/run/hookline-sam-local-{digest}")
    )


def _wait_until_up(daemon: Dockerd, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DockerdError(f"dockerd exited with {process.returncode}; see {log}")
        if daemon.docker("version", "--format", "{{.Server.Version}}", check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise DockerdError(f"dockerd did not answer within {_START_TIMEOUT_S:.0f} s; see {log}")


def leftovers(daemon: Dockerd) -> list[str]:
    """What of our dockerd is still on the host: processes, mounts (nsfs included)."""
    found = [f"process {pid} still runs" for pid in processes_mentioning(str(daemon.exec_root))]
    for root in (daemon.exec_root, daemon.data_root):
        found += [f"{mount.fs_type} mount left at {mount.mount_point}" for mount in mounts_under(root)]
    return found


def _stop(daemon: Dockerd, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        containers = daemon.docker("ps", "--all", "--quiet", check=False).stdout.split()
        if containers:
            daemon.docker("rm", "--force", "--volumes", *containers, check=False)
    stop_process(process, timeout_s=_STOP_TIMEOUT_S)
    # containerd and its shims stop with dockerd; whatever did not (a crash) names our exec root.
    kill_pids(processes_mentioning(str(daemon.exec_root)))
    unmount_under(daemon.exec_root)
    unmount_under(daemon.data_root)
    shutil.rmtree(daemon.exec_root, ignore_errors=True)


@contextmanager
def private_dockerd(daemon: Dockerd, *, log: Path) -> Iterator[Dockerd]:
    """Start our dockerd, yield once it answers, stop it and clean up after it whatever happened."""
    if processes_mentioning(str(daemon.exec_root)):
        raise DockerdError(f"a dockerd for {daemon.exec_root} already runs (another `make sam-local` here?)")
    unmount_under(daemon.exec_root)  # a previous run killed before its cleanup
    daemon.exec_root.mkdir(parents=True, exist_ok=True)
    daemon.data_root.mkdir(parents=True, exist_ok=True)
    config = daemon.exec_root / "daemon.json"
    config.write_text(json.dumps({}), encoding="utf-8")  # not the host's /etc/docker/daemon.json
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                "dockerd",
                "--config-file",
                str(config),
                "--data-root",
                str(daemon.data_root),
                "--exec-root",
                str(daemon.exec_root),
                "--pidfile",
                str(daemon.exec_root / "dockerd.pid"),
                "--host",
                daemon.host,
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--log-level",
                "warn",
            ],  # fmt: skip
            stdout=output,
            stderr=output,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "DOCKER_HOST": daemon.host},
        )
    try:
        _wait_until_up(daemon, process, log)
        yield daemon
    finally:
        _stop(daemon, process)
