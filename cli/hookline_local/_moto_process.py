"""Child-process entry point: moto's server on loopback until the parent closes stdin.

Run as a script (``python -I _moto_process.py --port N``), not imported by the parent: moto's backends are
process-global, so a ``mock_aws()`` anywhere in the parent process would wipe a server running there; in a child
they are isolated, and the server dies with its parent (stdin reaches EOF) instead of outliving it.

On top of moto, SQS gets what matters to hookline (``SqsModel``): atomic receives, an in-flight quota per queue that
empties receives once reached (as SQS does under long polling), and in-flight peaks. ``/_hookline/sqs`` on the same
port reads and sets that state (hookline_local.sqs_control is the client). ``install_fast_paths`` keeps moto's own
per-request bookkeeping from growing with the queue (same answers, far less CPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# moto imports a service on its first request; CloudFormation's parser alone pulls in ~40 services (seconds).
_WARM_SERVICES = ("cloudformation", "sqs", "dynamodb", "sns", "cloudwatch", "secretsmanager", "logs")
CONTROL_PREFIX = "/_hookline/sqs"
_POLL_S = 0.2


def _warm() -> None:
    from moto.backends import get_backend

    for service in _WARM_SERVICES:
        try:
            get_backend(service)  # type: ignore[call-overload]
        except Exception:  # noqa: BLE001 - warming is an optimisation; the first request imports it anyway
            continue


def _queue_arn(queue: Any) -> str:
    return f"arn:aws:sqs:{queue.region}:{queue.account_id}:{queue.name}"


@dataclass
class SqsModel:
    """SQS behaviour moto lacks: atomic receives, the in-flight quota, and peak in-flight per queue.

    * moto's ``receive_message`` checks ``message.visible`` and marks the message received without a lock, so two
      concurrent receives (the event source mapping's pollers) can both take one message, a duplicate real SQS never
      causes. Here the scan-and-mark runs under one lock; long-poll waits happen outside it.
    * In flight = received and not visible again (not deleted, visibility not expired), moto's NotVisible count.
      A delayed message (DelaySeconds) was never received, so it is not in flight, as in SQS.
    * At the quota a receive returns nothing, however long it polls: SQS's answer under long polling (a short poll
      would get OverLimit; every receiver here long-polls, as Lambda's event source does). Below it, a receive takes
      at most the room left.
    """

    default_quota: int  # the parent passes SQS's (hookline_local.sqs_control.SQS_INFLIGHT_QUOTA) unless told lower
    quotas: dict[str, int] = field(default_factory=dict)  # queue name -> quota
    lock: threading.Lock = field(default_factory=threading.Lock)
    peaks: dict[str, int] = field(default_factory=dict)  # queue ARN -> most messages in flight at once
    refused: dict[str, int] = field(default_factory=dict)  # queue ARN -> receives answered empty at the quota
    requests: dict[str, int] = field(default_factory=dict)  # "service.Action" -> requests served (every service)
    received: int = 0  # messages handed out by ReceiveMessage (a receive of 10 counts 10)
    receives_with_messages: int = 0  # ReceiveMessage calls that returned at least one message

    def quota_for(self, queue: Any) -> int:
        """The in-flight quota of one queue."""
        return self.quotas.get(queue.name, self.default_quota)

    @staticmethod
    def in_flight(queue: Any) -> int:
        """Messages received and not visible again (moto's ApproximateNumberOfMessagesNotVisible).

        One clock reading for the whole scan (``Message.visible`` reads it per message): this runs on every receive.
        """
        now = _unix_time_millis()
        return sum(1 for message in queue._messages if message.visible_at >= now)

    def note_peak(self, queue: Any) -> None:
        """Record the queue's in-flight count if it is a new peak (call under ``lock``)."""
        arn = _queue_arn(queue)
        self.peaks[arn] = max(self.peaks.get(arn, 0), self.in_flight(queue))

    def receive_once(self, original: Any, backend: Any, queue_name: str, count: int, *args: Any) -> list[Any] | None:
        """One non-blocking receive under the lock; None when the queue is at its quota."""
        with self.lock:
            queue = backend.get_queue(queue_name)
            room = self.quota_for(queue) - self.in_flight(queue)
            if room <= 0:
                return None
            result: list[Any] = original(backend, queue_name, min(count, room), 0, *args)
            if result:
                self.note_peak(queue)
                self.received += len(result)
                self.receives_with_messages += 1
            return result

    def receive(self, original: Any, backend: Any, queue_name: str, count: int, wait_s: float, *args: Any) -> Any:
        """ReceiveMessage: poll until a message arrives or ``wait_s`` ends (empty at the quota, like SQS)."""
        from moto.core.utils import unix_time

        deadline = unix_time() + wait_s
        at_quota = False
        while True:
            result = self.receive_once(original, backend, queue_name, count, *args)
            at_quota = at_quota or result is None
            remaining = deadline - unix_time()
            if result or remaining <= 0:
                if not result and at_quota:
                    with self.lock:
                        arn = _queue_arn(backend.get_queue(queue_name))
                        self.refused[arn] = self.refused.get(arn, 0) + 1
                return result or []
            # Wakes when a message is sent; a message whose visibility timeout ends is seen within _POLL_S.
            backend.get_queue(queue_name).wait_for_messages(min(remaining, _POLL_S))

    def install(self) -> None:
        """Patch moto's SQS backend (receives, visibility changes, sends, deletes) to follow this model."""
        from moto.sqs import models
        from moto.sqs.models import SQSBackend

        models.unix_time_millis = _unix_time_millis  # type: ignore[attr-defined]

        receive_message = SQSBackend.receive_message
        change_visibility = SQSBackend.change_message_visibility
        send_message = SQSBackend.send_message
        delete_message = SQSBackend.delete_message
        model = self

        def receive(  # noqa: PLR0913, PLR0917 - moto's signature, called positionally
            self: SQSBackend,
            queue_name: str,
            count: int,
            wait_s: int,
            visibility_timeout: int,
            message_attribute_names: list[str] | None = None,
        ) -> Any:
            return model.receive(
                receive_message, self, queue_name, count, wait_s, visibility_timeout, message_attribute_names
            )

        def change(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> None:
            with model.lock:
                change_visibility(self, queue_name, *args, **kwargs)
                model.note_peak(self.get_queue(queue_name))  # a visible message hidden again is in flight again

        # moto deletes by building a new message list and assigning it: two deletes (or a delete and a send) at once
        # lose one of them, a deleted message coming back or a sent one vanishing. They take the lock as well.
        def send(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            with model.lock:
                return send_message(self, queue_name, *args, **kwargs)

        def delete(self: SQSBackend, queue_name: str, receipt_handle: str) -> None:
            with model.lock:
                delete_message(self, queue_name, receipt_handle)

        SQSBackend.receive_message = receive  # type: ignore[method-assign,assignment]
        SQSBackend.change_message_visibility = change  # type: ignore[method-assign]
        SQSBackend.send_message = send  # type: ignore[method-assign]
        SQSBackend.delete_message = delete  # type: ignore[method-assign]

    # --- the control endpoint's views -------------------------------------------------------------------------
    def queue_view(self, queue: Any, *, messages: bool) -> dict[str, Any]:
        """One queue's counts (and messages when asked), as ``GET /_hookline/sqs`` shows them."""
        from moto.core.utils import unix_time_millis

        now = unix_time_millis()
        arn = _queue_arn(queue)
        in_flight = self.in_flight(queue)
        view: dict[str, Any] = {
            "name": queue.name,
            "arn": arn,
            "visible": sum(1 for m in queue._messages if m.visible and not m.delayed),
            "in_flight": in_flight,
            "delayed": sum(1 for m in queue._messages if m.delayed),
            "peak_in_flight": max(self.peaks.get(arn, 0), in_flight),
            "quota": self.quota_for(queue),
            "receives_refused": self.refused.get(arn, 0),
        }
        if messages:
            view["messages"] = [
                {
                    "message_id": m.id,
                    "receive_count": m.approximate_receive_count,
                    "visible_in_s": max(0.0, (m.visible_at - now) / 1000),
                    "delayed_for_s": max(0.0, (m.delayed_until - now) / 1000),
                    "body": m.body,
                    "attributes": {
                        name: value.get("StringValue") for name, value in (m.message_attributes or {}).items()
                    },
                }
                for m in queue._messages
            ]
        return view

    def state(self, *, messages: bool) -> dict[str, Any]:
        """Every queue of every account and region."""
        from moto.sqs.models import sqs_backends

        with self.lock:
            queues = [
                self.queue_view(queue, messages=messages)
                for account in list(sqs_backends)
                for backend in sqs_backends[account].values()
                for queue in list(backend.queues.values())
            ]
            return {
                "default_quota": self.default_quota,
                "quotas": dict(self.quotas),
                "queues": queues,
                "requests": dict(self.requests),
                "received": self.received,
                "receives_with_messages": self.receives_with_messages,
            }

    def count_request(self, environ: dict[str, Any]) -> None:
        """Count one API request by service and action (what AWS bills; the benchmarks read it)."""
        key = _request_key(environ)
        with self.lock:
            self.requests[key] = self.requests.get(key, 0) + 1

    def configure(self, request: dict[str, Any]) -> None:
        """Apply ``{"default_quota": N, "quotas": {name: N}, "reset_peaks": true, "release_delayed": [name]}`` (every
        key optional). ``release_delayed`` ends the delay of every message of the named queues (time passing).

        After a reset a queue's peak is its in-flight count at that moment, and grows from there.
        """
        from moto.sqs.models import sqs_backends

        with self.lock:
            released = {str(name) for name in request.get("release_delayed") or ()}
            for account in list(sqs_backends):
                for backend in sqs_backends[account].values():
                    for queue in list(backend.queues.values()):
                        if queue.name in released:
                            for message in queue._messages:
                                message.delayed_until = 0.0
            if "default_quota" in request:
                self.default_quota = _positive(request["default_quota"])
            for name, quota in (request.get("quotas") or {}).items():
                self.quotas[str(name)] = _positive(quota)
            if request.get("reset_peaks"):
                self.peaks.clear()
                self.refused.clear()
            if request.get("reset_requests"):
                self.requests.clear()
                self.received = 0
                self.receives_with_messages = 0


def _request_key(environ: dict[str, Any]) -> str:
    """``service.Action`` of a request: the SigV4 credential scope's service, then X-Amz-Target, the query's Action,
    or the REST method and first path segment."""
    scope = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return f"{service}.{target.rsplit('.', 1)[-1]}"
    action = re.search(r"(?:^|&)Action=([A-Za-z]+)", environ.get("QUERY_STRING", ""))
    if action:
        return f"{service}.{action.group(1)}"
    segment = environ.get("PATH_INFO", "/").strip("/").split("/", 1)[0]
    return f"{service}.{environ.get('REQUEST_METHOD', 'GET')} {segment}"


def _unix_time_millis(dt: Any = None) -> float:
    """moto's clock for SQS, 25x cheaper: ``Message.visible`` and ``delayed`` read it for every message on every
    receive (moto builds two datetimes per reading), which made receives on a queue of 1,000 messages CPU-bound."""
    if dt is not None:
        from moto.core.utils import unix_time_millis

        return unix_time_millis(dt)
    return time.time() * 1000.0


def install_fast_paths() -> None:
    """Make moto's per-request bookkeeping O(1) or one pass, with the same answers (bench/scale.py found it CPU-bound).

    Measured on 2,000 messages (bench/scale.py scenario (a)): moto's process used 9.8 s of CPU in a 15 s run because

    * every SendMessage entry reads ``Queue.attributes`` (for ContentBasedDeduplication), and every message a receive
      returns reads it three times (the retention check goes through ``get_queue_attributes``): each read counts the
      queue's messages three times over, each message reading the clock twice;
    * a delete scans the queue twice, building a list of receipt handles per message;
    * routing each request to its service lists moto's ~170 package directories with a stat each, under a lock
      every request takes.

    Here the counts are one pass with one clock reading, the retention check reads the one attribute it needs, a
    delete is one pass, and the package list and name conversions are computed once. Nothing SQS does changes.
    """
    _compute_routing_once()
    from moto.sqs.models import Queue, SQSBackend  # loaded by _compute_routing_once

    for name, value in {
        "messages": property(_visible_messages),
        "approximate_number_of_messages": property(_visible_count),
        "approximate_number_of_messages_delayed": property(_delayed_count),
        "approximate_number_of_messages_not_visible": property(_not_visible_count),
        "delete_message": _delete_message,
    }.items():
        setattr(Queue, name, value)
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign,assignment]


def _compute_routing_once() -> None:
    """Cache moto's CamelCase to snake_case conversions and its list of service packages (a directory scan)."""
    import functools

    from moto import backends
    from moto.core import responses, utils
    from moto.sqs import models

    snake = functools.cache(utils.camelcase_to_underscores)
    models.camelcase_to_underscores = snake  # type: ignore[attr-defined]
    responses.camelcase_to_underscores = snake  # type: ignore[attr-defined]
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _visible_messages(queue: Any) -> list[Any]:
    """``Queue.messages``: visible and not delayed, with one clock reading."""
    now = _unix_time_millis()
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _delayed_count(queue: Any) -> int:
    now = _unix_time_millis()
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _not_visible_count(queue: Any) -> int:
    now = _unix_time_millis()
    return sum(1 for m in queue._messages if not now > m.visible_at)


def _visible_count(queue: Any) -> int:
    return len(_visible_messages(queue))


def _delete_message(queue: Any, receipt_handle: str) -> None:
    """``Queue.delete_message`` in one pass over the queue."""
    if receipt_handle in queue.deleted_messages:
        return  # already deleted: SQS accepts it again
    kept = []
    for message in queue._messages:
        if message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles:
            queue.pending_messages.discard(message)
            queue.deleted_messages.update(message.all_receipt_handles)
        else:
            kept.append(message)
    if len(kept) == len(queue._messages):
        from moto.sqs.exceptions import ReceiptHandleIsInvalid  # moto is imported only in its own process

        raise ReceiptHandleIsInvalid
    queue._messages = kept


def _within_retention(backend: Any, queue_name: str, message: Any) -> bool:
    """The retention check reading only the queue's retention period (not every attribute, each counting messages)."""
    retention_s = backend.get_queue(queue_name).message_retention_period
    return bool(retention_s + message.sent_timestamp / 1000 > time.time())


def _positive(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"an in-flight quota must be at least 1, not {value!r}")
    return number


def control_app(model: SqsModel, moto_app: Any) -> Any:
    """moto's WSGI app with ``/_hookline/sqs`` in front: GET the queues (``?messages=1`` lists them), POST settings."""
    from werkzeug.wrappers import Request, Response

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            model.count_request(environ)
            return moto_app(environ, start_response)
        request = Request(environ)
        try:
            if request.method == "POST":
                model.configure(json.loads(request.get_data() or b"{}"))
            body, status = model.state(messages=request.args.get("messages") == "1"), 200
        except (ValueError, TypeError, AttributeError) as error:
            body, status = {"error": str(error)}, 400
        return Response(json.dumps(body), status=status, mimetype="application/json")(environ, start_response)

    return app


def _serve(host: str, port: int, *, serial: bool, model: SqsModel) -> Any:
    """moto's WSGI app on a werkzeug server in a thread (as ThreadedMotoServer does), threaded unless ``serial``."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = control_app(model, DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=not serial, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    return server


def main() -> int:
    """Start the server, print `ready <port>`, serve until stdin closes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serial", action="store_true", help="serve one request at a time (linearizable)")
    parser.add_argument("--inflight-quota", type=int, required=True, help="in-flight quota of every queue")
    args = parser.parse_args()
    if args.host not in _LOOPBACK:
        sys.stderr.write(f"refusing to bind moto to non-loopback address {args.host}\n")
        return 2
    # werkzeug logs every request at INFO; the local stack's log only needs problems.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    model = SqsModel(default_quota=_positive(args.inflight_quota))
    install_fast_paths()
    model.install()
    server = _serve(args.host, args.port, serial=args.serial, model=model)
    sys.stdout.write(f"ready {server.server_port}\n")
    sys.stdout.flush()
    threading.Thread(target=_warm, name="warm", daemon=True).start()
    try:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe, or died
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
