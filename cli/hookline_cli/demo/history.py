"""The demo's last question: "what happened to this dead message?", answered from delivery history (docs/history.md).

The local stack ships the delivery function's log lines to its log group in moto; the same reader the CLI uses on
the local stack (FilterLogEvents) gives one dead-lettered message's attempts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text

from hookline.history import HistoryError, HistoryReader, LogEventsSource

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import RenderableType

    from hookline.history import MessageHistory
    from hookline_cli.deadletters import DeadLetter
    from hookline_local import LocalStack

__all__ = ["dead_message_history", "render_dead_message"]

# The most telling example first: a message that used all its attempts.
_PREFERRED_REASONS = ("retries_exhausted", "expired", "endpoint_gone")


def dead_message_history(stack: LocalStack, letters: Sequence[DeadLetter]) -> MessageHistory | None:
    """One dead letter's history (None: no dead letter, history off, or its lines not found)."""
    if not letters:
        return None
    outputs = stack.outputs
    days = int(float(outputs.get("HistoryRetentionDays", "0") or 0))
    groups = [group for group in outputs.get("HistoryLogGroups", "").split(",") if group]
    if days <= 0 or not groups:
        return None
    if stack.shipper is not None:
        stack.shipper.flush()
    rank = {reason: index for index, reason in enumerate(_PREFERRED_REASONS)}
    letter = min(letters, key=lambda item: rank.get(item.reason or "", len(rank)))
    reader = HistoryReader(LogEventsSource(stack.client("logs"), groups), retention_days=days)
    try:
        return reader.show(letter.webhook_id)
    except HistoryError:
        return None


def render_dead_message(history: MessageHistory) -> RenderableType:
    """The dead message's attempts, one line each (what `hookline messages show ID` prints as a table)."""
    heading = Text(f"What happened to {history.message_id}? (hookline messages show ID)", "bold")
    detail = Text(f"  {history.status} ({history.reason}), endpoint {history.endpoint}, event {history.event_type}")
    lines: list[RenderableType] = [heading, detail]
    for attempt in history.attempts:
        when = datetime.fromtimestamp(attempt.time, tz=UTC).strftime("%H:%M:%S")
        status = f"HTTP {attempt.http_status}" if attempt.http_status else "no answer"
        target = "" if attempt.target is None else " primary" if attempt.target == 0 else f" fallback {attempt.target}"
        why = attempt.reason or attempt.error or ""
        line = Text(f"  #{attempt.attempt or '?'} {when}  {attempt.outcome:<9} {status}{target}  ", no_wrap=True)
        line.append(why, style="dim")
        line.overflow = "ellipsis"
        lines.append(line)
    return Group(*lines)
