"""History settings of a function, from its environment (template ``HistoryRetentionDays`` and ``RetainPayloads``).

``HISTORY_RETENTION_DAYS`` (0 or absent = history off) and ``PAYLOAD_TABLE`` (set only when payloads are kept).
With history off nothing is written for history: no payload, no index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hookline.history.payloads import PayloadStore
from hookline.settings import parse_whole_number

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["HistoryConfig"]


@dataclass(frozen=True)
class HistoryConfig:
    """How long history is kept and where payloads go (None = not kept)."""

    retention_days: int = 0
    payload_table: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HistoryConfig:
        """Read HISTORY_RETENTION_DAYS and PAYLOAD_TABLE; SettingsError (a ValueError) for a malformed number."""
        env = os.environ if environ is None else environ
        days = parse_whole_number("HISTORY_RETENTION_DAYS", (env.get("HISTORY_RETENTION_DAYS") or "0").strip(), low=0)
        table = (env.get("PAYLOAD_TABLE") or "").strip() or None
        return cls(retention_days=days, payload_table=table)

    @property
    def enabled(self) -> bool:
        """Whether history is kept at all."""
        return self.retention_days > 0

    @property
    def keeps_payloads(self) -> bool:
        """Whether payloads are kept for replay (history on and a payload table)."""
        return self.enabled and self.payload_table is not None

    def payload_store(self, *, dynamodb: Any) -> PayloadStore | None:
        """The payload table (build one per environment; a ``PayloadRecorder`` per batch), or None when not kept."""
        if self.payload_table is None or not self.enabled:
            return None
        return PayloadStore(self.payload_table, client=dynamodb, retention_days=self.retention_days)
