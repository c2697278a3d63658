"""The local stand-in for AWS's python3.13 Lambda image, built from Debian packages and PyPI only.

AWS's image (public.ecr.aws/lambda/python) cannot be pulled here, so `make sam-local` builds one:

- Debian trixie, ``debootstrap --variant=minbase --include=python3`` (trixie's python3 is 3.13); SAM adds its
  runtime interface emulator on top with a ``RUN mv``/``chmod``, so the image needs a shell and coreutils;
- /var/runtime: the runtime's own packages (layers/shared/requirements-runtime.txt: boto3, botocore ... at the
  runtime's versions) and awslambdaric (image-requirements.txt), as wheels for python3.13 on this host's machine;
- /var/runtime/bootstrap, which the emulator starts: ``python3.13 -m awslambdaric "$_HANDLER"`` with the function's
  code, then the layers, then the runtime's packages on the path, in Lambda's order.

The root file system is cached as a tarball in ~/.cache/hookline/sam-local (shared by every clone on the machine),
named by a digest of this recipe; `docker import` turns it into ``hookline/sam-local-python3.13:<digest>`` in our
dockerd once per data root. About 120 MB.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from scripts.sam_local.system import unmount_under

if TYPE_CHECKING:
    from scripts.sam_local.dockerd import Dockerd

__all__ = ["IMAGE_REPOSITORY", "ensure_image", "image_name", "lambda_architecture", "rootfs_tarball"]

ROOT = Path(__file__).resolve().parents[2]
IMAGE_REPOSITORY = "hookline/sam-local-python3.13"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
RUNTIME_REQUIREMENTS = ROOT / "layers" / "shared" / "requirements-runtime.txt"
IMAGE_REQUIREMENTS = Path(__file__).with_name("image-requirements.txt")

_BOOTSTRAP = """\
#!/bin/sh
# What the Lambda python3.13 runtime puts on the path, in its order: the function, the layers, the runtime.
export PYTHONPATH="/var/task:/opt/python:/var/runtime"
exec /usr/bin/python3.13 -m awslambdaric "$_HANDLER"
"""
# As AWS's image sets them; SAM overrides the entrypoint with its emulator, which then starts /var/runtime/bootstrap.
_IMAGE_CHANGES = (
    "ENV LAMBDA_TASK_ROOT=/var/task",
    "ENV LAMBDA_RUNTIME_DIR=/var/runtime",
    "ENV LANG=C.UTF-8",
    "ENV TZ=:UTC",
    "ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin",
    "WORKDIR /var/task",
    'ENTRYPOINT ["/var/runtime/bootstrap"]',
)
# Not needed to run a function; dropped to keep the image small.
_SLIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")
_MACHINES = {"x86_64": ("x86_64", "x86_64"), "aarch64": ("arm64", "aarch64")}


def lambda_architecture() -> str:
    """Lambda's name for this host's machine (x86_64 or arm64): functions run natively, never under emulation."""
    return _MACHINES[platform.machine()][0]


def _digest() -> str:
    recipe = hashlib.sha256()
    for part in (Path(__file__), RUNTIME_REQUIREMENTS, IMAGE_REQUIREMENTS):
        recipe.update(part.read_bytes())
    recipe.update(platform.machine().encode())
    return recipe.hexdigest()[:12]


def image_name() -> str:
    """The image this recipe builds, e.g. ``hookline/sam-local-python3.13:0123456789ab``."""
    return f"{IMAGE_REPOSITORY}:{_digest()}"


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hookline" / "sam-local"


def _install_runtime_packages(rootfs: Path, log: IO[str]) -> None:
    machine = _MACHINES[platform.machine()][1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            f"manylinux2014_{machine}",
            "--platform",
            f"manylinux_2_28_{machine}",
            "--python-version",
            "3.13",
            "--implementation",
            "cp",
            "--abi",
            "cp313",
            "--target",
            str(rootfs / "var" / "runtime"),
            "--requirement",
            str(RUNTIME_REQUIREMENTS),
            "--requirement",
            str(IMAGE_REQUIREMENTS),
        ],  # fmt: skip
        check=True,
        stdout=log,
        stderr=log,
    )


def _build_rootfs(rootfs: Path, tarball: Path, log: IO[str]) -> None:
    shutil.rmtree(rootfs, ignore_errors=True)
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3", SUITE, str(rootfs), MIRROR],
            check=True,
            stdout=log,
            stderr=log,
        )
    finally:
        unmount_under(rootfs)  # debootstrap mounts /proc and /sys inside; a failed run can leave them
    _install_runtime_packages(rootfs, log)
    bootstrap = rootfs / "var" / "runtime" / "bootstrap"
    bootstrap.write_text(_BOOTSTRAP, encoding="utf-8")
    bootstrap.chmod(0o755)
    for directory in ("var/task", "opt"):
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    for path in _SLIM:
        shutil.rmtree(rootfs / path, ignore_errors=True)
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "--create", "--file", str(partial), "--numeric-owner", "-C", str(rootfs), "."], check=True)
    partial.rename(tarball)
    shutil.rmtree(rootfs, ignore_errors=True)


def rootfs_tarball(log: Path) -> tuple[Path, bool]:
    """The cached root file system for this recipe, built first if missing (output to ``log``); and whether it was."""
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"rootfs-{_digest()}.tar"
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per machine; other runs wait for it
        if tarball.exists():
            return tarball, False
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf-8") as output:
            _build_rootfs(cache / f"rootfs-{_digest()}", tarball, output)
        return tarball, True


def ensure_image(daemon: Dockerd, *, log: Path) -> tuple[str, str]:
    """Make sure our dockerd has the base image; returns its name and how it got there (cached/imported/built)."""
    name = image_name()
    if daemon.docker("image", "inspect", name, check=False).returncode == 0:
        return name, "cached"
    tarball, built = rootfs_tarball(log)
    changes = [argument for change in _IMAGE_CHANGES for argument in ("--change", change)]
    daemon.docker("import", *changes, str(tarball), name)
    return name, "built" if built else "imported"
