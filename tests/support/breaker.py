"""Breaker test support: a moto server that answers one request at a time (fake time: tests.support.timefakes)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from tests.support.aws import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def serial_moto_server() -> Iterator[str]:
    """moto on loopback with a non-threaded WSGI server: requests are served strictly one after another.

    A single-threaded server makes every DynamoDB operation linearizable, so a concurrency test that still sees
    too many probes granted has found a bug in the breaker's conditional writes, not in moto's locking.
    """
    port = free_port()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", port, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, name="serial-moto", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
