"""moto in server mode on loopback, in a child process that cannot outlive its parent: the one moto launcher.

The local stack, the test suites and the benchmarks all start moto through ``MotoServer``. ``serial=True`` serves
one request at a time, so every DynamoDB operation is linearizable (concurrency tests of conditional writes need
that; moto's threaded server does not lock its tables). Its SQS follows the local model (``inflight_quota`` per
queue, peaks; see _moto_process.py), read and set through ``sqs_control()``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self

from hookline_local.exceptions import MotoServerError
from hookline_local.sqs_control import SQS_INFLIGHT_QUOTA, SqsControl

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["FAKE_CREDENTIALS", "MotoServer", "MotoServerError", "safe_base_environment"]

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
_SCRIPT = Path(__file__).with_name("_moto_process.py")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# Only these are inherited by child processes: nothing that could point a child at a real AWS account.
_INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT", "TMPDIR", "HOME")


def safe_base_environment(region: str) -> dict[str, str]:
    """A child environment with fake credentials and no AWS config, so nothing can reach a real account."""
    env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TZ": "UTC",
        }
    )
    return env


class MotoServer:
    """Start/stop moto's server in a child process; ``endpoint_url`` once started (also a context manager)."""

    def __init__(  # noqa: PLR0913 - moto process settings, each a keyword with a default
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        log: IO[bytes] | None = None,
        serial: bool = False,
        inflight_quota: int = SQS_INFLIGHT_QUOTA,
        python: str = sys.executable,
        start_timeout_s: float = 60.0,
    ) -> None:
        if host not in _LOOPBACK:
            raise ValueError(f"moto must listen on loopback, not {host!r}")
        if inflight_quota < 1:
            raise ValueError(f"the in-flight quota must be at least 1, not {inflight_quota}")
        self._host = host
        self._port = port
        self._region = region
        self._log = log
        self._serial = serial
        self._inflight_quota = inflight_quota
        self._python = python
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._bound_port: int | None = None

    @property
    def endpoint_url(self) -> str:
        """http://<host>:<port> of the running server."""
        if self._bound_port is None:
            raise MotoServerError("moto server is not running")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._bound_port}"

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._process.pid if self._process else None

    def sqs_control(self) -> SqsControl:
        """The client of this server's SQS model (in-flight counts and peaks, quotas, message timers)."""
        return SqsControl(self.endpoint_url)

    def start(self) -> str:
        """Start the server; return its endpoint URL."""
        command = [self._python, "-I", str(_SCRIPT), "--host", self._host, "--port", str(self._port)]
        command += ["--inflight-quota", str(self._inflight_quota)]
        if self._serial:
            command.append("--serial")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            env=safe_base_environment(self._region),
        )
        line: list[bytes] = []
        stdout = self._process.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self._start_timeout_s)
        text = line[0].decode().strip() if line else ""
        if not text.startswith("ready "):
            self.stop()
            raise MotoServerError(f"moto server did not start (got {text!r}); see the local stack log")
        self._bound_port = int(text.split()[1])
        return self.endpoint_url

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the server. moto keeps everything in memory, so there is nothing to flush: terminate it."""
        process, self._process = self._process, None
        self._bound_port = None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
