"""Breaker test support: a moto server that answers one request at a time (fake time: tests.support.timefakes)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tests.support.aws import free_port
from tests.support.template import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

_START_TIMEOUT_S = 30.0


def _serve(port: int) -> None:
    """Run moto's WSGI app on a non-threaded server until killed (this module's __main__)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=False).serve_forever()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serial moto server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"serial moto server did not listen on 127.0.0.1:{port} within {_START_TIMEOUT_S}s")


@contextmanager
def serial_moto_server() -> Iterator[str]:
    """moto on loopback in its own process, with a non-threaded WSGI server: requests are served one at a time.

    A single-threaded server makes every DynamoDB operation linearizable, so a concurrency test that still sees
    too many probes granted has found a bug in the breaker's conditional writes, not in moto's locking. Its own
    process keeps the server off the GIL that the test's contending threads fight over.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.breaker", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_listening(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
