"""AWS list prices the benchmarks turn into dollars (us-east-1, arm64, read from the public pricing pages 2026-11).

One file, so every benchmark prices the same way; change a price here only with its date.
"""

from __future__ import annotations

__all__ = [
    "DYNAMODB_USD_PER_GB_MONTH",
    "DYNAMODB_USD_PER_READ_UNIT",
    "DYNAMODB_USD_PER_WRITE_UNIT",
    "FIREHOSE_RECORD_ROUNDING_BYTES",
    "FIREHOSE_USD_PER_GB",
    "LAMBDA_ARM_USD_PER_GB_S",
    "LAMBDA_MB_PER_VCPU",
    "LAMBDA_USD_PER_REQUEST",
    "LOGS_INSIGHTS_USD_PER_GB_SCANNED",
    "LOGS_USD_PER_GB_INGESTED",
    "LOGS_USD_PER_GB_MONTH",
    "PRICES_AS_OF",
    "SCHEDULER_USD_PER_INVOCATION",
    "SECRETS_MANAGER_USD_PER_CALL",
    "SQS_BYTES_PER_REQUEST",
    "SQS_USD_PER_REQUEST",
]

PRICES_AS_OF = "2026-11"
LAMBDA_ARM_USD_PER_GB_S = 0.0000133334
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
# Lambda allocates CPU in proportion to memory: 1,769 MB is one full vCPU (AWS Lambda developer guide, "Memory and
# computing power"); 512 MB is about 0.29 of one.
LAMBDA_MB_PER_VCPU = 1769

# SQS standard queue: $0.40 per million requests; every 64 KB chunk of a request's payload is billed as one request.
SQS_USD_PER_REQUEST = 0.40 / 1_000_000
SQS_BYTES_PER_REQUEST = 64 * 1024
# DynamoDB on demand: $0.625 per million write request units, $0.125 per million read request units (an eventually
# consistent read of up to 4 KB is half a unit; a write of up to 1 KB is one unit).
DYNAMODB_USD_PER_WRITE_UNIT = 0.625 / 1_000_000
DYNAMODB_USD_PER_READ_UNIT = 0.125 / 1_000_000
# DynamoDB storage (standard table class): $0.25 per GB-month.
DYNAMODB_USD_PER_GB_MONTH = 0.25
# CloudWatch Logs: $0.50 per GB ingested (standard log class), $0.03 per GB-month stored (compressed), Logs Insights
# $0.005 per GB scanned.
LOGS_USD_PER_GB_INGESTED = 0.50
LOGS_USD_PER_GB_MONTH = 0.03
LOGS_INSIGHTS_USD_PER_GB_SCANNED = 0.005
# Amazon Data Firehose (direct PUT): $0.029 per GB ingested, each record rounded up to 5 KB.
FIREHOSE_USD_PER_GB = 0.029
FIREHOSE_RECORD_ROUNDING_BYTES = 5 * 1024
# Secrets Manager: $0.05 per 10,000 API calls.
SECRETS_MANAGER_USD_PER_CALL = 0.05 / 10_000
# EventBridge Scheduler: $1.00 per million scheduled invocations (after 14 million free a month, not counted here);
# creating and deleting schedules is not billed.
SCHEDULER_USD_PER_INVOCATION = 1.00 / 1_000_000
