"""hookline.tracing.build_tracer: the X-Ray SDK's recorder is loaded only when tracing is enabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each case runs in a fresh interpreter: Powertools keeps Tracer config class-wide and the SDK is imported once.
_PROBE = """
import asyncio, json, sys
from hookline.tracing import build_tracer

tracer = build_tracer(patch_modules=["botocore"])

@tracer.capture_method
async def double(value):
    tracer.put_annotation("value", value)
    return 2 * value

@tracer.capture_lambda_handler
def handler(event, context):
    tracer.put_metadata("event", event)
    return asyncio.run(double(event["value"]))

import botocore.client
result = handler({"value": 21}, None) if tracer.disabled else None
print(json.dumps({
    "disabled": bool(tracer.disabled),
    "provider": type(tracer.provider).__name__,
    "xray_recorder_loaded": "aws_xray_sdk.core" in sys.modules,
    "botocore_patched": type(botocore.client.BaseClient._make_api_call).__name__ != "function",
    "result": result,
}))
"""


def _probe(**env: str) -> dict[str, object]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in {"POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"}
    }
    clean.update(
        PYTHONPATH=str(ROOT / "layers" / "shared"),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",
        **env,
    )
    output = subprocess.run(
        [sys.executable, "-c", _PROBE], env=clean, capture_output=True, text=True, check=True, timeout=60
    )
    probed: dict[str, object] = json.loads(output.stdout.strip().splitlines()[-1])
    return probed


def test_disabled_by_env_never_loads_the_xray_recorder_and_still_wraps_the_handler() -> None:
    probed = _probe(POWERTOOLS_TRACE_DISABLED="true", LAMBDA_TASK_ROOT=str(ROOT / "functions" / "delivery"))
    assert probed == {
        "disabled": True,
        "provider": "_NoTracing",
        "xray_recorder_loaded": False,
        "botocore_patched": False,
        "result": 42,
    }


def test_outside_lambda_tracing_is_disabled_without_the_xray_recorder() -> None:
    probed = _probe()
    assert probed["disabled"] is True
    assert probed["xray_recorder_loaded"] is False
    assert probed["result"] == 42


def test_in_lambda_with_tracing_enabled_it_is_the_powertools_xray_tracer() -> None:
    probed = _probe(LAMBDA_TASK_ROOT=str(ROOT / "functions" / "delivery"), AWS_LAMBDA_FUNCTION_NAME="hookline-delivery")
    assert probed == {
        "disabled": False,
        "provider": "AsyncAWSXRayRecorder",
        "xray_recorder_loaded": True,
        "botocore_patched": True,
        "result": None,
    }
