"""Bytes logged per delivered message by the delivery function: this checkout against another (say main's).

Each source tree's ``functions/delivery/app.py`` runs in its own interpreter, as Lambda runs it (the layer on the
path, ``inject_lambda_context`` and the X-Ray trace id set), against moto in-process and a loopback receiver
answering 204; batches of 10 healthy messages. Everything the invocations print counts: the function's log lines and
its EMF documents, plus Lambda's START/END/REPORT lines (about 330 bytes an invocation, estimated).

    nice .venv/bin/python bench/logbytes.py [--other /path/to/another/checkout] [--batches 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_LINE_BYTES = 330

_CHILD = r"""
import contextlib, io, json, os, sys, uuid
import boto3
from moto import mock_aws
from hookline_local.loopback import Reply, loopback_server

source, batches = sys.argv[1], int(sys.argv[2])
os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                  ALLOW_PRIVATE_TARGETS="true", POWERTOOLS_SERVICE_NAME="hookline-delivery", LOG_LEVEL="INFO",
                  POWERTOOLS_METRICS_NAMESPACE="Hookline", POWERTOOLS_TRACE_DISABLED="true",
                  _X_AMZN_TRACE_ID="Root=1-67a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1")
with mock_aws(), loopback_server(default=Reply(status=204)) as receiver:
    ddb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    for name, key in (("endpoints", [("name", "HASH")]), ("breakers", [("pk", "HASH"), ("sk", "RANGE")]),
                      ("pacing", [("pk", "HASH")])):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in key],
                         KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in key])
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    os.environ.update(ENDPOINTS_TABLE="endpoints", BREAKER_TABLE="breakers", DEAD_LETTER_QUEUE_URL=dlq)
    boto3.client("secretsmanager").create_secret(Name="hookline/acme", SecretString="whsec_" + "A" * 32)
    ddb.put_item(TableName="endpoints", Item={"name": {"S": "acme-billing"}, "url": {"S": receiver.url("/hook")},
                                              "secret_id": {"S": "hookline/acme"}, "enabled": {"BOOL": True}})
    import importlib.util
    spec = importlib.util.spec_from_file_location("app", f"{source}/functions/delivery/app.py")
    app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)

    class Context:
        function_name = "hookline-DeliveryFunction"; function_version = "$LATEST"; memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:hookline-DeliveryFunction"
        log_group_name = "/aws/lambda/hookline-delivery"; log_stream_name = "2026/11/28/[$LATEST]0123456789abcdef"
        def __init__(self): self.aws_request_id = str(uuid.uuid4())
        def get_remaining_time_in_millis(self): return 60_000

    def event():
        records = []
        for _ in range(10):
            mid = str(uuid.uuid4())
            body = json.dumps({"version": 1, "event_type": "invoice.paid", "endpoint": "acme-billing",
                               "id": "msg_01JD8Q6V2K8Y3N7W5R4T9B6C0A", "payload": {"invoice": "in_1001"}})
            records.append({"messageId": mid, "receiptHandle": "rh-" + mid, "body": body,
                            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795852800000"},
                            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
        return {"Records": records}

    app.lambda_handler(event(), Context())  # warm-up: cold-start keys and first reads are not steady state
    out = io.StringIO()
    app.logger.registered_handler.stream = out
    with contextlib.redirect_stdout(out):
        for _ in range(batches):
            app.lambda_handler(event(), Context())
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    emf = [line for line in lines if '"_aws"' in line]
    logs = [line for line in lines if '"_aws"' not in line]
    print(json.dumps({"messages": 10 * batches, "invocations": batches,
                      "log_bytes": sum(len(line.encode()) + 1 for line in logs),
                      "emf_bytes": sum(len(line.encode()) + 1 for line in emf),
                      "sample": next((line for line in logs if "elivered" in line), "")}))
"""


def measure(source: Path, batches: int) -> dict[str, object]:
    """Run ``source``'s delivery function in a child interpreter; its figures."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "HOOKLINE_"))}
    # The source's layer ahead of the editable install's (PYTHONPATH comes before site-packages).
    env["PYTHONPATH"] = str(source / "layers" / "shared")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(source), str(batches)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=source,
    )
    figures: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    """Measure this checkout (and --other) and print bytes per delivered message."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", type=Path, help="another checkout to compare (e.g. main's: git archive main)")
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    sources = {"this checkout": ROOT} | ({"other": args.other} if args.other else {})
    print("| source | log lines per message | EMF per message | platform lines per message | total bytes per message |")
    print("|---|---:|---:|---:|---:|")
    samples = {}
    for name, source in sources.items():
        figures = measure(source, args.batches)
        messages = int(figures["messages"])  # type: ignore[call-overload]
        logs = int(figures["log_bytes"]) / messages  # type: ignore[call-overload]
        emf = int(figures["emf_bytes"]) / messages  # type: ignore[call-overload]
        platform = PLATFORM_LINE_BYTES * int(figures["invocations"]) / messages  # type: ignore[call-overload]
        print(f"| {name} | {logs:.0f} | {emf:.0f} | {platform:.0f} | {logs + emf + platform:.0f} |")
        samples[name] = figures["sample"]
    for name, sample in samples.items():
        print(f"\n{name}, a success line ({len(str(sample).encode()) + 1} bytes):\n{sample}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
