"""Webhook delivery: targets, schedule, one attempt, dead letters, the batch service and the in-process client."""

from __future__ import annotations
