"""Read and set the local SQS model from outside moto: in-flight counts and peaks, quotas, each message's timers.

moto runs in a child process (server.py) whose SQS follows ``SqsModel`` (_moto_process.py): an in-flight quota per
queue that empties receives once reached, and peak in-flight tracking. Its state is served on the moto port under
``/_hookline/sqs``; this is the client. Quotas are keyed by queue name (the last part of the queue URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SQS_INFLIGHT_QUOTA", "MessageTimers", "QueueState", "SqsControl", "queue_arn", "queue_name"]

SQS_INFLIGHT_QUOTA = 120_000  # SQS's in-flight quota per standard queue (the model's default)
_PATH = "/_hookline/sqs"


def queue_name(queue: str) -> str:
    """A queue's name from its URL or ARN (or the name itself)."""
    return queue.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def queue_arn(url: str, region: str) -> str:
    """A queue's ARN from its URL (``.../<account>/<name>``)."""
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


@dataclass(frozen=True)
class MessageTimers:
    """One message: how often it was received and how long until it is visible / no longer delayed."""

    message_id: str
    receive_count: int
    visible_in_s: float
    delayed_for_s: float


@dataclass(frozen=True)
class QueueState:
    """One queue as the model sees it: visible, in flight (received, not visible again), delayed, peak and quota."""

    name: str
    arn: str
    visible: int
    in_flight: int
    delayed: int
    peak_in_flight: int
    quota: int
    receives_refused: int
    """Receives answered empty because the queue was at its quota."""
    messages: tuple[MessageTimers, ...] = ()

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> QueueState:
        """Build from the control endpoint's JSON."""
        messages = tuple(MessageTimers(**item) for item in view.get("messages", ()))
        fields = {key: view[key] for key in cls.__dataclass_fields__ if key != "messages"}
        return cls(**fields, messages=messages)


class SqsControl:
    """Client of the SQS model of one local moto server (``endpoint_url``: http://127.0.0.1:<port>)."""

    def __init__(self, endpoint_url: str, *, http: httpx.Client | None = None) -> None:
        self._url = endpoint_url.rstrip("/") + _PATH
        # Loopback only: never through a proxy from the environment.
        self._http = http or httpx.Client(timeout=10.0, trust_env=False)

    def _parse(self, response: httpx.Response) -> dict[str, QueueState]:
        document = response.json()
        if response.status_code != httpx.codes.OK:
            raise ValueError(document.get("error", response.text))
        return {view["name"]: QueueState.from_view(view) for view in document["queues"]}

    def queues(self, *, messages: bool = False) -> dict[str, QueueState]:
        """Every queue by name (with each message's timers when ``messages``)."""
        return self._parse(self._http.get(self._url, params={"messages": "1"} if messages else None))

    def queue(self, queue: str, *, messages: bool = True) -> QueueState:
        """One queue by URL, ARN or name; KeyError if moto has none by that name."""
        return self.queues(messages=messages)[queue_name(queue)]

    def configure(
        self, *, default_quota: int | None = None, quotas: Mapping[str, int] | None = None, reset_peaks: bool = False
    ) -> dict[str, QueueState]:
        """Set the default quota and per-queue quotas (keys: URL, ARN or name); optionally reset peaks."""
        body: dict[str, Any] = {"reset_peaks": reset_peaks}
        if default_quota is not None:
            body["default_quota"] = default_quota
        if quotas:
            body["quotas"] = {queue_name(queue): quota for queue, quota in quotas.items()}
        return self._parse(self._http.post(self._url, json=body))

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()
