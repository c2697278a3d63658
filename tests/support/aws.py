"""moto for tests: in-process mocks for unit/contract tests, a real moto server on loopback for the rest.

The server is the local stack's own launcher (hookline_local.server.MotoServer): moto in a child process, so a
``mock_aws()`` in this process can never wipe it, and it cannot outlive the test run.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from hookline_local.server import MotoServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REGION = "us-east-1"

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def child_environ() -> dict[str, str]:
    """This process's environment for a child ``hookline`` process, without AWS_* and HOOKLINE_* settings."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "HOOKLINE_"))}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def moto_server(*, serial: bool = False) -> Iterator[str]:
    """moto in server mode on a free loopback port; yield its endpoint URL. ``serial``: one request at a time."""
    with MotoServer(region=REGION, serial=serial) as server:
        yield server.endpoint_url


def client(service: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client for moto (in-process when endpoint_url is None)."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def unreachable_client(service: str) -> Any:
    """A boto3 client for a loopback port nobody listens on: every call is refused at once, no packet leaves."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=2),
    )


class OneKeyPerBatchGet:
    """A DynamoDB client whose BatchGetItem serves the first key asked for and leaves the rest unprocessed, as DynamoDB
    may under throttling; ``calls`` records the partition keys each call asked for."""

    def __init__(self, table: str, attributes: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.table = table
        self.attributes = attributes  # the served item's attributes besides its key
        self.calls: list[list[str]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        """One key served, the others returned as UnprocessedKeys."""
        keys = RequestItems[self.table]["Keys"]
        self.calls.append([key["pk"]["S"] for key in keys])
        unprocessed = {self.table: {"Keys": keys[1:], "ConsistentRead": False}} if keys[1:] else {}
        served = {**keys[0], **self.attributes(keys[0])}
        return {"Responses": {self.table: [served]}, "UnprocessedKeys": unprocessed}
