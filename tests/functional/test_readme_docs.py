"""Every Python block of the README's seed-parity section runs as written and its assertions hold.

The in-process delivery example runs against an httpx.MockTransport receiver (the module-level client's transport is
injected through ``webhook_client.configure``), which checks each request with the standardwebhooks library. The
integration example runs against a stack in the moto server, named as a local stack (``use_local_stack``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from standardwebhooks import Webhook

from hookline.delivery.client import webhook_client
from hookline.local import stop_using_local_stack, use_local_stack
from hookline.signing import PlainSecret
from resilience.breaker import set_default_registry
from tests.support.aws import FAKE_ENV, client
from tests.support.delivery_fakes import MockReceiver
from tests.support.docs import python_blocks, run_block

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.template import StackResources

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = README.read_text(encoding="utf-8").split("## Seed parity", 1)[1].split("\n## ", 1)[0]
BLOCKS = python_blocks(README, section="Seed parity")
SEED_NAMES = (
    "RetryConfig",
    "FallbackStrategy",
    "get_circuit_breaker",
    "webhook_client",
    "integration_service",
    "verify_standard",
)


def test_the_section_shows_every_seed_example() -> None:
    for name in SEED_NAMES:
        assert any(name in block for block in BLOCKS), name
    # The receiver's key the README spells out is the plain secret's whsec_ form.
    assert PlainSecret("webhook_secret").whsec in SECTION


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockReceiver]:
    """A receiver behind the module-level client; the client's default configuration is restored afterwards."""
    monkeypatch.delenv("BREAKER_TABLE", raising=False)
    receiver = MockReceiver()
    webhook_client.configure(environ={}, transport=httpx.MockTransport(receiver))
    try:
        yield receiver
    finally:
        webhook_client.configure()
        set_default_registry(None)


@pytest.fixture
def local_stack(stack: StackResources, moto_endpoint: str, tmp_path: Path) -> Iterator[StackResources]:
    """The stack's tables as a local stack's local.json names them, selected for this process's helpers."""
    state = {
        "endpoint_url": moto_endpoint,
        "region": FAKE_ENV["AWS_REGION"],
        "credentials": {key.lower(): FAKE_ENV[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
        "outputs": {
            "EndpointsTableName": stack.endpoints_table,
            "HealthHistoryTableName": stack.health_history_table,
            "BreakerTableName": stack.breaker_table,
        },
    }
    path = tmp_path / ".hookline" / "local.json"
    path.parent.mkdir()
    path.write_text(json.dumps(state), encoding="utf-8")
    use_local_stack(path)
    try:
        yield stack
    finally:
        stop_using_local_stack()


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, receiver: MockReceiver, request: pytest.FixtureRequest) -> None:
    stack = request.getfixturevalue("local_stack") if "integration_service" in BLOCKS[index] else None

    run_block(BLOCKS[index], f"README.md[seed parity block {index}]")

    if stack is not None:
        item = client("dynamodb", request.getfixturevalue("moto_endpoint")).get_item(
            TableName=stack.endpoints_table, Key={"name": {"S": "billing-api"}}
        )["Item"]
        assert item["url"]["S"] == "https://billing.example.com/webhooks"
    for received in receiver.requests:
        # The receiver's side of the example: its plain secret verifies as whsec_ + base64(secret).
        Webhook(PlainSecret("webhook_secret").whsec).verify(received.content, dict(received.headers), json_parse=False)
    if "webhook_client" in BLOCKS[index]:
        assert [str(received.url) for received in receiver.requests] == ["https://hooks.example.com/webhook"]
