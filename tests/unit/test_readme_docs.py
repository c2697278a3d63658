"""Every Python block of the README's seed-parity section runs as written and its assertions hold.

The in-process delivery example runs against an httpx.MockTransport receiver (the module-level client's transport is
injected through ``webhook_client.configure``), which checks each request with the standardwebhooks library.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from standardwebhooks import Webhook

from hookline.delivery.client import webhook_client
from hookline.signing import PlainSecret
from resilience.breaker import set_default_registry
from tests.support.delivery_fakes import MockReceiver
from tests.support.docs import python_blocks, run_block

if TYPE_CHECKING:
    from collections.abc import Iterator

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = README.read_text(encoding="utf-8").split("## Seed parity", 1)[1].split("\n## ", 1)[0]
BLOCKS = python_blocks(README, section="Seed parity")
SEED_NAMES = ("RetryConfig", "FallbackStrategy", "get_circuit_breaker", "webhook_client", "verify_standard")


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


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, receiver: MockReceiver) -> None:
    run_block(BLOCKS[index], f"README.md[seed parity block {index}]")
    for request in receiver.requests:
        # The receiver's side of the example: its plain secret verifies as whsec_ + base64(secret).
        Webhook(PlainSecret("webhook_secret").whsec).verify(request.content, dict(request.headers), json_parse=False)
    if "webhook_client" in BLOCKS[index]:
        assert [str(request.url) for request in receiver.requests] == ["https://hooks.example.com/webhook"]
