"""`hookline demo` as a user runs it (a subprocess of the console script): it settles, reports, and leaves nothing."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.aws import child_environ

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HOOKLINE = Path(sys.executable).with_name("hookline")


def test_demo_settles_summarizes_and_cleans_up() -> None:
    state = ROOT / ".hookline" / "local.json"
    had_state = state.exists()
    env = child_environ()
    completed = subprocess.run(
        [str(HOOKLINE), "demo", "--messages", "60", "--timeout", "60", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout)
    print(json.dumps({key: summary[key] for key in ("sent", "delivered", "dead_lettered", "elapsed_s")}))
    assert summary["sent"] == 60
    assert summary["unaccounted"] == 0 and not summary["timed_out"]
    assert summary["unverified_requests"] == 0
    assert summary["delivered"] + sum(summary["dead_lettered"].values()) == 60
    assert summary["served_by_fallback"] >= 1
    assert set(summary["dead_lettered"]) <= {"endpoint_gone", "endpoint_disabled", "retries_exhausted"}
    assert "endpoint_gone" in summary["dead_lettered"]
    # The demo ends with one dead message's attempts, read back from delivery history (the functions' log lines).
    example = summary["dead_example"]
    assert example["status"] == "dead"
    assert example["reason"] in summary["dead_lettered"]
    assert example["history"][-1]["outcome"] == "dead"
    assert summary["metrics"]["DeliverySucceeded"] >= summary["delivered"]
    states = {row["target"].split()[0]: row["state"] for row in summary["breakers"]}
    assert states.get("initech-crm") in {"open", "forced_open", "half_open"}
    health = {row["name"]: row for row in summary["health"]}
    assert health["initech-crm"]["state"] == "unhealthy"
    assert not health["umbrella-legacy"]["enabled"]
    queues = summary["queues"]
    assert 1 <= queues["DeliveryQueue"]["peak_in_flight"] <= queues["DeliveryQueue"]["quota"] == 120_000
    assert queues["DeadLetterQueue"]["peak_in_flight"] == 0  # the summary reads peaks before peeking at the DLQ

    # Nothing left behind: local.json removed (unless another stack owned it), moto's port closed.
    assert state.exists() == had_state
    match = re.search(r"local stack (http://127\.0\.0\.1:(\d+))", completed.stderr)
    assert match, completed.stderr[-2000:]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(match.group(2))), timeout=2):
        pass
