"""Child-process entry point: moto's ThreadedMotoServer on loopback until the parent closes stdin.

Run as a script (``python -I _moto_process.py --port N``), not imported: moto's backends are process-global, so a
``mock_aws()`` anywhere in the parent process would wipe a server running there; in a child they are isolated,
and the server dies with its parent (stdin reaches EOF) instead of outliving it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import Any

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# moto imports a service on its first request; CloudFormation's parser alone pulls in ~40 services (seconds).
_WARM_SERVICES = ("cloudformation", "sqs", "dynamodb", "sns", "cloudwatch", "secretsmanager", "logs")


def _warm() -> None:
    from moto.backends import get_backend

    for service in _WARM_SERVICES:
        try:
            get_backend(service)  # type: ignore[call-overload]
        except Exception:  # noqa: BLE001 - warming is an optimisation; the first request imports it anyway
            continue


def serialize_sqs_receives() -> None:
    """Make moto's ReceiveMessage atomic, as SQS is: one message goes to one receiver per visibility timeout.

    moto's ``SQSBackend.receive_message`` checks ``message.visible`` and marks the message received without a lock,
    so two concurrent ReceiveMessage calls (the event source mapping's pollers) can both take the same message: a
    duplicate delivery that real SQS never causes. The scan-and-mark runs under one lock here; long-poll waits
    happen outside it, so a waiting poller never blocks another.
    """
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message
    if getattr(original, "_hookline_serialized", False):
        return
    lock = threading.Lock()

    def receive_message(  # noqa: PLR0917 - moto calls it positionally
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        deadline = unix_time() + wait_seconds_timeout
        while True:
            with lock:
                result: list[Any] = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - unix_time()
            if result or remaining <= 0:
                return result
            # Wakes when a message is sent; a message whose visibility timeout ends is seen within 0.2 s.
            self.get_queue(queue_name).wait_for_messages(min(remaining, 0.2))  # type: ignore[arg-type]  # a float works

    receive_message._hookline_serialized = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


def main() -> int:
    """Start the server, print `ready <port>`, serve until stdin closes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.host not in _LOOPBACK:
        sys.stderr.write(f"refusing to bind moto to non-loopback address {args.host}\n")
        return 2
    # werkzeug logs every request at INFO; the local stack's log only needs problems.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import ThreadedMotoServer

    serialize_sqs_receives()
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()
    threading.Thread(target=_warm, name="warm", daemon=True).start()
    try:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe, or died
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
