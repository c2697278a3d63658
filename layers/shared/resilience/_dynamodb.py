"""DynamoDB plumbing shared by the layer's stores (the breaker's here, hookline's pacing store): one table through a
lazily built client, storage failures mapped to the store's own error at this one boundary, batched reads, numbers.

A failed condition is not a storage failure: ``call`` lets its ``ClientError`` through (``condition_failed`` tells
it apart), because a lost race is an expected answer that each store handles itself. The names are stable: other
modules of the layer import them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["DynamoDBTable", "Item", "condition_failed", "number", "read_number"]

Item = dict[str, Any]

_BATCH_GET_LIMIT = 100
_UNPROCESSED_ROUNDS = 5


def number(value: float) -> dict[str, str]:
    """A DynamoDB number; floats keep six decimals (microseconds, for times)."""
    return {"N": repr(round(value, 6)) if isinstance(value, float) else str(value)}


def read_number(item: Item, name: str) -> float | None:
    """The number ``name`` of a raw item, or None when absent."""
    raw = item.get(name)
    return float(raw["N"]) if raw is not None else None


def condition_failed(error: ClientError) -> bool:
    """Whether DynamoDB refused a request because its condition did not hold."""
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class DynamoDBTable:
    """One table: requests counted, storage failures raised as ``error(message)``, failed conditions let through."""

    def __init__(self, name: str, *, client: Any = None, error: Callable[[str], Exception]) -> None:
        self.name = name
        self.requests = 0
        self._client = client
        self._error = error

    @property
    def client(self) -> Any:
        """The boto3 DynamoDB client, built on first use so that a cold start pays for it only when needed."""
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def call(self, operation: str, **kwargs: Any) -> Any:
        """One request (``TableName`` is the caller's); a failed condition raises its ``ClientError``."""
        self.requests += 1
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as error:
            if condition_failed(error):
                raise
            raise self._error(f"DynamoDB {operation} on {self.name} failed: {error}") from error
        except BotoCoreError as error:
            raise self._error(f"DynamoDB {operation} on {self.name} failed: {error}") from error

    def batch_get(self, keys: Sequence[Item], *, consistent: bool = False) -> Iterator[Item]:
        """The items of ``keys`` that exist, with as few BatchGetItem calls as DynamoDB allows (100 keys each),
        asking again for the keys it leaves unprocessed."""
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.name: {"Keys": list(keys[start : start + _BATCH_GET_LIMIT]), "ConsistentRead": consistent}
            }
            for _ in range(_UNPROCESSED_ROUNDS):
                response = self.call("batch_get_item", RequestItems=request)
                yield from response.get("Responses", {}).get(self.name, [])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise self._error(f"DynamoDB kept {len(request[self.name]['Keys'])} keys unprocessed")
