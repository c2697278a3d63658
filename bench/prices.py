"""AWS list prices the benchmarks turn into dollars (us-east-1, arm64, read from the public pricing pages 2026-11).

One file, so every benchmark prices the same way; change a price here only with its date.
"""

from __future__ import annotations

__all__ = [
    "LAMBDA_ARM_USD_PER_GB_S",
    "LAMBDA_MB_PER_VCPU",
    "LAMBDA_USD_PER_REQUEST",
    "PRICES_AS_OF",
]

PRICES_AS_OF = "2026-11"
LAMBDA_ARM_USD_PER_GB_S = 0.0000133334
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
# Lambda allocates CPU in proportion to memory: 1,769 MB is one full vCPU (AWS Lambda developer guide, "Memory and
# computing power"); 512 MB is about 0.29 of one.
LAMBDA_MB_PER_VCPU = 1769
