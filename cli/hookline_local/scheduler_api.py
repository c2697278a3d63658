"""EventBridge Scheduler one-time schedules created at run time (``CreateSchedule`` with ``at(...)``), fired locally.

moto's Scheduler API stores schedules but never fires them. Functions may create one-time schedules while they run,
for example to park a long wait; here each enabled ``at(...)`` schedule of the local moto is fired once its moment
has come (at once when it has passed), as EventBridge Scheduler does with its one-minute precision, only sooner:

* a target that is a local function is invoked with the target's ``Input`` (else Scheduler's default event);
* a target that is an SQS queue gets the ``Input`` as its message body, byte for byte (``SqsParameters``'
  MessageGroupId for FIFO queues);
* the universal target ``aws-sdk:sqs:sendMessage`` sends the ``Input`` as the SendMessage request it is (body and
  message attributes: how delivery parks a long wait);
* ``ActionAfterCompletion: DELETE`` deletes the schedule afterwards; otherwise it stays, fired once.

Recurring schedules created at run time (``rate``/``cron``) and other target types are logged once and left alone;
the template's own schedules are schedule.py's.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hookline_local.events import scheduled_event
from hookline_local.schedule import parse_at

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hookline_local.invoke import Invoker
    from hookline_local.resolve import FunctionSpec

__all__ = ["RuntimeSchedules"]

_log = logging.getLogger("hookline.local")
_SQS_SEND_MESSAGE = "arn:aws:scheduler:::aws-sdk:sqs:sendMessage"


class RuntimeSchedules:
    """Polls moto's Scheduler for one-time schedules and fires each once it is due."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        *,
        scheduler: Any,
        sqs: Any,
        functions: Mapping[str, FunctionSpec],
        new_invoker: Callable[[FunctionSpec], Invoker],
        endpoint_url: str,
        region: str,
        account_id: str,
        poll_s: float = 0.5,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._scheduler = scheduler
        self._sqs = sqs
        self._functions = {spec.arn: spec for spec in functions.values()}
        self._new_invoker = new_invoker
        self._endpoint_url = endpoint_url.rstrip("/")
        self._region = region
        self._account_id = account_id
        self._poll_s = poll_s
        self._now = now
        self._invokers: dict[str, Invoker] = {}
        self._done: set[tuple[str, str]] = set()  # fired, or not a one-time schedule: never looked at again
        self._waiting: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = 0

    def start(self) -> None:
        """Poll on a thread until stopped."""
        self._thread = threading.Thread(target=self._loop, name="scheduler-api", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.poll_once()
            except Exception:  # the poller survives a failed call (or a bug); it is logged
                _log.exception("runtime schedules: polling failed")

    @property
    def waiting(self) -> int:
        """One-time schedules seen by the last poll whose moment has not come yet."""
        with self._lock:
            return len(self._waiting)

    def poll_once(self) -> int:
        """Fire every enabled one-time schedule that is due; return how many were fired."""
        with self._lock:
            fired = 0
            self._waiting.clear()
            for page in self._scheduler.get_paginator("list_schedules").paginate(State="ENABLED"):
                for summary in page.get("Schedules", []):
                    key = (summary.get("GroupName") or "default", summary["Name"])
                    if key not in self._done and self._fire_if_due(key):
                        fired += 1
            self.fired += fired
            return fired

    def _fire_if_due(self, key: tuple[str, str]) -> bool:
        group, name = key
        schedule = self._scheduler.get_schedule(GroupName=group, Name=name)
        due = parse_at(schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone"))
        if due is None:
            _log.info("runtime schedule %s/%s: %s is not emulated", group, name, schedule["ScheduleExpression"])
            self._done.add(key)
            return False
        if due > self._now():
            self._waiting.add(key)
            return False
        self._done.add(key)
        target = schedule["Target"]
        if target["Arn"] in self._functions:
            self._invoke(schedule, self._functions[target["Arn"]])
        elif target["Arn"].startswith("arn:aws:sqs:"):
            self._send(schedule)
        elif target["Arn"] == _SQS_SEND_MESSAGE:
            self._send_message(schedule)
        else:
            _log.warning("runtime schedule %s: target %s is not emulated", name, target["Arn"])
        if schedule.get("ActionAfterCompletion") == "DELETE":
            self._scheduler.delete_schedule(GroupName=group, Name=name)
        return True

    def _event(self, schedule: dict[str, Any], payload: str | None) -> Any:
        return scheduled_event(
            kind="scheduler",
            resource_arn=schedule["Arn"],
            region=self._region,
            account_id=self._account_id,
            now=self._now(),
            payload=payload,
        )

    def _invoke(self, schedule: dict[str, Any], function: FunctionSpec) -> None:
        invoker = self._invokers.setdefault(function.logical_id, self._new_invoker(function))
        result = invoker.invoke(self._event(schedule, schedule["Target"].get("Input")))
        if not result.ok:
            _log.warning("runtime schedule %s: %s: %s", schedule["Name"], result.error_type, result.error_message)

    def _send(self, schedule: dict[str, Any]) -> None:
        """Scheduler's SQS target: the Input is the message body as it is (else the default event, as JSON)."""
        target = schedule["Target"]
        _, _, _, _, account, queue = target["Arn"].split(":", 5)
        payload = target.get("Input")
        message: dict[str, Any] = {
            "QueueUrl": f"{self._endpoint_url}/{account}/{queue}",
            "MessageBody": payload if payload is not None else json.dumps(self._event(schedule, None)),
        }
        group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
        if group_id:
            message["MessageGroupId"] = group_id
        self._sqs.send_message(**message)

    def _send_message(self, schedule: dict[str, Any]) -> None:
        """Scheduler's universal target ``aws-sdk:sqs:sendMessage``: the Input is the SendMessage request (JSON, binary
        attribute values in base64), sent as it is."""
        request = json.loads(schedule["Target"]["Input"])
        for value in (request.get("MessageAttributes") or {}).values():
            if "BinaryValue" in value:
                value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
        self._sqs.send_message(**request)

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop polling; close the environments it started."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(grace_s)
            self._thread = None
        for invoker in self._invokers.values():
            invoker.close()
