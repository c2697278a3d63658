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

    from resilience._clock import Clock

__all__ = ["DynamoDBTable", "Item", "TableStore", "UpdateExpression", "condition_failed", "number", "read_number"]

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


class UpdateExpression:
    """Builds one UpdateItem's expressions with placeholder names and values (and its condition, if any)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.clauses: dict[str, list[str]] = {"SET": [], "REMOVE": [], "ADD": []}
        self.conditions: list[str] = []
        """Joined with AND, each in parentheses."""

    def name(self, attribute: str) -> str:
        """A placeholder for an attribute name."""
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        """A placeholder for a value (already in DynamoDB's typed form)."""
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> None:
        """SET the attribute to a typed value."""
        self.clauses["SET"].append(f"{self.name(attribute)} = {self.value(value)}")

    def add(self, attribute: str, amount: float) -> None:
        """ADD a number to the attribute (atomic; created at 0 when absent)."""
        self.clauses["ADD"].append(f"{self.name(attribute)} {self.value(number(amount))}")

    def set_if_absent(self, attribute: str, value: Any) -> None:
        """SET the attribute unless it exists."""
        placeholder = self.name(attribute)
        self.clauses["SET"].append(f"{placeholder} = if_not_exists({placeholder}, {self.value(value)})")

    def remove(self, attribute: str) -> None:
        """REMOVE the attribute."""
        self.clauses["REMOVE"].append(self.name(attribute))

    def update_expression(self) -> str:
        """The UpdateExpression."""
        return " ".join(f"{verb} {', '.join(parts)}" for verb, parts in self.clauses.items() if parts)

    def request(self) -> dict[str, Any]:
        """The UpdateItem arguments for the expressions: UpdateExpression, names, values, condition."""
        request: dict[str, Any] = {
            "UpdateExpression": self.update_expression(),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        if self.conditions:
            request["ConditionExpression"] = " AND ".join(f"({condition})" for condition in self.conditions)
        return request


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


class TableStore:
    """Base of the layer's DynamoDB stores: the table, the wall clock that stamps writes, the request count."""

    def __init__(self, table_name: str, *, client: Any, clock: Clock, error: Callable[[str], Exception]) -> None:
        self.table_name = table_name
        self.clock = clock
        self._table = DynamoDBTable(table_name, client=client, error=error)

    @property
    def client(self) -> Any:
        """The boto3 DynamoDB client, built on first use so that a cold start pays for it only when needed."""
        return self._table.client

    @property
    def requests(self) -> int:
        """Requests sent to DynamoDB so far."""
        return self._table.requests
