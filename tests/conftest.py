"""Fixtures every test suite may use. Suite-specific fixtures live in that suite's own conftest.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from moto import mock_aws

from tests.support.aws import FAKE_ENV, client, moto_server
from tests.support.template import StackResources, create_stack_resources
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can ever reach a real AWS account."""
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process for the duration of one test."""
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    """A DynamoDB client of moto in-process (suites on the moto server define their own)."""
    return client("dynamodb")


@pytest.fixture
def clock() -> FakeClock:
    """Fake time from 1.8e9 s (January 2027), moved only by the test (a suite needing another start overrides it)."""
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server on loopback for the session (tests create uniquely named resources)."""
    with moto_server() as url:
        yield url


@pytest.fixture
def stack(moto_endpoint: str) -> StackResources:
    """Fresh tables, queues and topic in the moto server, created from template.yaml."""
    return create_stack_resources(
        client("dynamodb", moto_endpoint), client("sqs", moto_endpoint), client("sns", moto_endpoint)
    )
