"""What delivery history costs, in dollars per million messages, from measured bytes (docs/history.md "Cost").

    .venv/bin/python bench/history_cost.py [--payload-bytes 2048] [--messages-per-day 1000000]

Measured here: the bytes the history fields add to a delivery log line (the real Powertools formatter), how well
log lines compress (what CloudWatch Logs storage bills), and the DynamoDB item a kept payload becomes (the real
encoder). Computed from them with list prices: log ingestion and storage, payload writes and storage, the queries,
and the two alternatives weighed (Data Firehose to S3, a DynamoDB item per attempt). ``history_rows()`` gives the
rows to bench/cost.py's table.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import logging
import math
import random
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "layers" / "shared")]

import prices  # noqa: E402
from aws_lambda_powertools import Logger  # noqa: E402

from hookline.history.payloads import PayloadMeta, item_size, payload_item  # noqa: E402

GB = 1024**3
OPERATIONAL_LOG_DAYS = 30  # the delivery log group's retention before history existed (and with history off)
BATCH_SIZE = 10
BATCH_WRITE_S = 0.015  # assumed DynamoDB BatchWriteItem latency, once per batch, on the 512 MB function
MEMORY_GB = 0.5
STORAGE_COMPRESSION_FLOOR = 0.15


@dataclass(frozen=True)
class Row:
    """One row of the cost table."""

    case: str
    per_million: float
    note: str


def _line(logger: Logger, buffer: io.StringIO, **fields: object) -> int:
    buffer.seek(0)
    buffer.truncate()
    logger.info("delivered", extra=fields)
    return len(buffer.getvalue().rstrip("\n").encode())


@functools.cache
def measure_log_bytes() -> tuple[int, int, float]:
    """(line bytes without history fields, bytes the history fields add, compression ratio of a day of lines)."""
    buffer = io.StringIO()
    logger = Logger(service="hookline-delivery", logger_handler=_handler(buffer))
    base = {"webhook_id": "msg_2Nf0cI1x8dQm3vYzLk", "endpoint": "acme-billing", "attempt": 1, "target": 0}
    base |= {"origin": "https://hooks.acme.com", "status": 200, "latency_ms": 183.4}
    without = _line(logger, buffer, **base)
    with_history = _line(logger, buffer, **base, outcome="delivered", event_type="invoice.paid")
    rng = random.Random(7)
    lines = []
    for index in range(2000):
        fields = dict(base, webhook_id=f"msg_{rng.getrandbits(80):020x}", latency_ms=round(rng.uniform(50, 900), 1))
        fields |= {"outcome": "delivered", "event_type": rng.choice(["invoice.paid", "refund.created"])}
        fields["endpoint"] = f"customer-{index % 50}"
        buffer.seek(0)
        buffer.truncate()
        logger.info("delivered", extra=fields)
        lines.append(buffer.getvalue())
    text = "".join(lines).encode()
    # CloudWatch bills stored logs by their compressed size; zlib on similar lines is the measurement, and AWS's own
    # pricing examples assume 0.15: take the larger, so the figure errs on the expensive side.
    ratio = max(len(zlib.compress(text, 6)) / len(text), STORAGE_COMPRESSION_FLOOR)
    return without, with_history - without, ratio


def _handler(buffer: io.StringIO) -> logging.Handler:
    return logging.StreamHandler(buffer)


def measure_payload_item(payload_bytes: int) -> int:
    """Bytes of the DynamoDB item a kept payload of about ``payload_bytes`` of JSON becomes (names + values)."""
    rng = random.Random(11)
    payload: dict[str, object] = {"id": "in_1P4", "object": "invoice", "lines": []}
    lines: list[object] = []
    payload["lines"] = lines
    while len(json.dumps(payload, separators=(",", ":"))) < payload_bytes:
        lines.append(
            {"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": rng.randint(1, 9), "amount": rng.randint(100, 99999)}
        )
    body = json.dumps(payload, separators=(",", ":")).encode()
    meta = PayloadMeta("invoice.paid", endpoint="acme-billing")
    return item_size(payload_item("msg_2Nf0cI1x8dQm3vYzLk", body, meta, now=1.8e9, ttl_s=30 * 86400))


def history_rows(*, payload_bytes: int = 2048, retention_days: int = 30) -> list[Row]:
    """Dollars per million messages for history, payloads off and on, and the alternatives."""
    line_bytes, extra_bytes, ratio = measure_log_bytes()
    months = retention_days / 30
    extra_days = max(0, retention_days - OPERATIONAL_LOG_DAYS)
    ingest = extra_bytes * 1e6 / GB * prices.LOGS_USD_PER_GB_INGESTED
    storage = (line_bytes + extra_bytes) * ratio * 1e6 / GB * prices.LOGS_USD_PER_GB_MONTH * extra_days / 30
    item = measure_payload_item(payload_bytes)
    write_units = math.ceil(item / 1024)
    writes = write_units * 1e6 * prices.DYNAMODB_USD_PER_WRITE_UNIT
    lambda_s = BATCH_WRITE_S / BATCH_SIZE * 1e6 * MEMORY_GB * prices.LAMBDA_ARM_USD_PER_GB_S
    kept = item * 1e6 / GB * prices.DYNAMODB_USD_PER_GB_MONTH * months
    firehose_record = max(line_bytes, prices.FIREHOSE_RECORD_ROUNDING_BYTES)
    firehose = firehose_record * 1e6 / GB * prices.FIREHOSE_USD_PER_GB
    return [
        Row(
            f"history, payloads off, {retention_days} d",
            ingest + storage,
            f"+{extra_bytes} B/line (outcome, event_type) on a {line_bytes} B line; "
            f"{extra_days} days of log storage beyond the {OPERATIONAL_LOG_DAYS} already kept",
        ),
        Row(
            f"history, payloads on ({payload_bytes} B), {retention_days} d",
            ingest + storage + writes + lambda_s + kept,
            f"item {item} B = {write_units} write unit(s), written once; storage {months:.1f} month(s); "
            f"batch write ~{BATCH_WRITE_S * 1000:.0f} ms per {BATCH_SIZE} messages",
        ),
        Row(
            "alternative: Data Firehose to S3 (payloads off)", firehose, "records rounded up to 5 KB; + alarms, Athena"
        ),
        Row(
            "alternative: DynamoDB item per attempt (payloads off)",
            1e6 * prices.DYNAMODB_USD_PER_WRITE_UNIT,
            "1 write unit per attempt, at least",
        ),
    ]


def query_rows(*, messages_per_day: int, retention_days: int) -> list[Row]:
    """Dollars per query: `messages show ID` with and without the webhook_id field index, `messages list --since 1h`."""
    line_bytes, extra_bytes, _ratio = measure_log_bytes()
    per_message = (line_bytes + extra_bytes) * 1.2  # ~1.2 lines per message: retries, dead letters, EMF aside
    scan_all = messages_per_day * retention_days * per_message / GB * prices.LOGS_INSIGHTS_USD_PER_GB_SCANNED
    one_hour = messages_per_day / 24 * per_message / GB * prices.LOGS_INSIGHTS_USD_PER_GB_SCANNED
    indexed = 10 * per_message / GB * prices.LOGS_INSIGHTS_USD_PER_GB_SCANNED
    return [
        Row("query: messages show ID, field index", indexed, "scans that message's events only"),
        Row("query: messages show ID, no index", scan_all, f"scans {retention_days} days of lines"),
        Row("query: messages list --since 1h", one_hour, "scans the hour"),
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload-bytes", type=int, default=2048)
    parser.add_argument("--messages-per-day", type=int, default=1_000_000)
    parser.add_argument("--retention-days", type=int, default=30)
    args = parser.parse_args(argv)
    line_bytes, extra_bytes, ratio = measure_log_bytes()
    print(f"log line {line_bytes} B, history fields +{extra_bytes} B, stored compressed to {ratio:.0%}")
    print(f"{'case':58} {'$ per million msgs':>18}  note")
    printed: set[str] = set()
    for retention in sorted({args.retention_days, 90}):
        for row in history_rows(payload_bytes=args.payload_bytes, retention_days=retention):
            if row.case not in printed:
                printed.add(row.case)
                print(f"{row.case:58} {row.per_million:18.4f}  {row.note}")
    print(f"\nper query, at {args.messages_per_day:,} messages/day, {args.retention_days} days kept:")
    for row in query_rows(messages_per_day=args.messages_per_day, retention_days=args.retention_days):
        print(f"{row.case:58} {row.per_million:18.6f}  {row.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
