"""Fleet-wide per-key flow control for webhook delivery: rate limit, in-flight limit, AIMD on 429 (docs/pacing.md).

The DynamoDB store is imported lazily (``hookline.pacing.dynamodb``) so that importing the pacer does not import
botocore.
"""

from __future__ import annotations

from hookline.pacing.config import PacerConfig
from hookline.pacing.exceptions import PacingConfigError, PacingError, PacingStoreError
from hookline.pacing.factory import build_pacer
from hookline.pacing.memory import MemoryPaceStore
from hookline.pacing.model import PaceLimits, PaceRecord, Throttle, endpoint_key, origin_key
from hookline.pacing.pacer import Admission, Lease, MetricsHook, Pacer
from hookline.pacing.store import PaceStore

__all__ = [
    "Admission",
    "Lease",
    "MemoryPaceStore",
    "MetricsHook",
    "PaceLimits",
    "PaceRecord",
    "PaceStore",
    "Pacer",
    "PacerConfig",
    "PacingConfigError",
    "PacingError",
    "PacingStoreError",
    "Throttle",
    "build_pacer",
    "endpoint_key",
    "origin_key",
]
