"""The local stack's log shipper: lines reach CloudWatch Logs in time order, and the bytes it took are counted."""

from __future__ import annotations

from typing import Any

from hookline_local.cloudwatch_logs import LogShipper


class _Logs:
    """Records the CloudWatch Logs calls the shipper makes (the group does not exist yet)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_log_groups(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_log_groups", kwargs))
        return {"logGroups": []}

    def create_log_group(self, **kwargs: Any) -> None:
        self.calls.append(("create_log_group", kwargs))

    def create_log_stream(self, **kwargs: Any) -> None:
        self.calls.append(("create_log_stream", kwargs))

    def put_log_events(self, **kwargs: Any) -> None:
        self.calls.append(("put_log_events", kwargs))


def test_lines_are_shipped_in_time_order_and_their_bytes_counted() -> None:
    logs, times = _Logs(), iter([0.0, 1.0, 3.0, 2.0, 4.0])  # the first names the stream
    shipper = LogShipper(logs, clock=lambda: next(times))
    for line in ("first", "third", "second", "é"):
        shipper.add("/aws/lambda/delivery", line)
    assert shipper.bytes == len("first third second ") + len("é".encode()) + 1  # newline included, UTF-8 bytes
    shipper.flush()
    ((name, put),) = [call for call in logs.calls if call[0] == "put_log_events"]
    assert [event["message"] for event in put["logEvents"]] == ["first", "second", "third", "é"]
    assert put["logGroupName"] == "/aws/lambda/delivery" and shipper.shipped == 4
    assert [call[0] for call in logs.calls[:2]] == ["describe_log_groups", "create_log_group"]
