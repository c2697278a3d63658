"""Host plumbing for `make sam-local`: Debian packages, mounts and leftover processes under a directory of ours."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Mount",
    "ensure_commands",
    "free_loopback_port",
    "kill_pids",
    "mounts_under",
    "processes_mentioning",
    "stop_process",
    "unmount_under",
]

_MOUNTINFO = Path("/proc/self/mountinfo")


def ensure_commands(packages: dict[str, str]) -> list[str]:
    """Install with apt-get the Debian package of every command (name -> package) not on PATH; returns them."""
    missing = sorted({package for command, package in packages.items() if shutil.which(command) is None})
    if missing:
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=environment
        )
    return missing


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo: where it is mounted and its filesystem type (nsfs, overlay, proc ...)."""

    mount_point: Path
    fs_type: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return field.encode().decode("unicode_escape")


def mounts_under(root: Path, *, mountinfo: Path = _MOUNTINFO) -> list[Mount]:
    """Mounts at ``root`` or below it, deepest first (the order to unmount them in)."""
    found: list[Mount] = []
    for line in mountinfo.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        separator = fields.index("-")
        point = Path(_unescape(fields[4]))
        if point == root or root in point.parents:
            found.append(Mount(point, fields[separator + 1]))
    return sorted(found, key=lambda mount: len(mount.mount_point.parts), reverse=True)


def unmount_under(root: Path) -> list[Mount]:
    """Unmount everything mounted at or below ``root`` (lazily when busy); returns what was mounted."""
    mounts = mounts_under(root)
    for mount in mounts:
        if subprocess.run(["umount", str(mount.mount_point)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "--lazy", str(mount.mount_point)], capture_output=True, check=False)
    return mounts


def processes_mentioning(text: str, *, proc: Path = Path("/proc")) -> list[int]:
    """PIDs whose command line contains ``text`` (our dockerd's containerd and shims name our exec root)."""
    pids: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command_line:
            pids.append(int(entry.name))
    return pids


def kill_pids(pids: list[int]) -> None:
    """SIGKILL each PID that still exists (processes this run started)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def stop_process(process: subprocess.Popen[Any], *, timeout_s: float) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a listener we start next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
