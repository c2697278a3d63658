"""boto3 clients for the local moto server: explicit fake credentials, loopback endpoint, no AWS config read."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

__all__ = ["ACCOUNT_ID", "moto_client"]

ACCOUNT_ID = "123456789012"  # moto's default account
# Long polls (WaitTimeSeconds up to 20) must not hit the read timeout; moto answers everything else at once. One
# client serves every event source mapping's pollers and their parallel receives and deletes (esm.py): room for all.
_CONFIG = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=64
)


def moto_client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client bound to the moto server (never to a real AWS endpoint)."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing", region_name=region
    )
    return session.client(service, endpoint_url=endpoint_url, config=_CONFIG)  # type: ignore[call-overload]
