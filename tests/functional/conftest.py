"""Fixtures of the functional suite: the CLI harness on the session's moto server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.aws import client
from tests.support.cli import CliHarness, with_fresh_queues
from tests.support.template import create_stack_resources

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.template import StackResources


@pytest.fixture(scope="module")
def tables(moto_endpoint: str) -> StackResources:
    """Tables and topic shared by a module's tests (names are unique per test); queues are fresh per test."""
    return create_stack_resources(
        client("dynamodb", moto_endpoint), client("sqs", moto_endpoint), client("sns", moto_endpoint)
    )


@pytest.fixture
def cli(tables: StackResources, moto_endpoint: str, tmp_path: Path) -> CliHarness:
    """The `hookline` CLI on the moto server, with the module's tables and fresh queues."""
    stack = with_fresh_queues(tables, client("sqs", moto_endpoint))
    return CliHarness(stack=stack, endpoint_url=moto_endpoint, tmp_path=tmp_path)
