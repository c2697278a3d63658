"""RequeueBuffer: each record awaits its own SendMessageBatch entry; an entry SQS did not accept is its error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hookline.delivery.requeue import Entry, RequeueBuffer, RequeueError
from hookline.messages import MAX_MESSAGE_BYTES

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/retries"


class _Sqs:
    """Answers SendMessageBatch with ``answer(entries)``: (successful ids, failed ids); ids in neither go unanswered."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[list[dict[str, Any]]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        assert QueueUrl == QUEUE
        self.calls.append(Entries)
        successful, failed = self.answer(Entries)
        return {
            "Successful": [{"Id": entry["Id"], "MessageId": f"m-{entry['MessageBody']}"} for entry in successful],
            "Failed": [{"Id": entry["Id"], "Code": "InternalError", "SenderFault": False} for entry in failed],
        }


async def _direct(function: Any, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


async def _send_all(buffer: RequeueBuffer, bodies: list[str]) -> list[str | BaseException]:
    for _ in bodies:  # every record of the batch is working before the first one waits on the buffer
        buffer.enter()

    async def one(body: str) -> str:
        try:
            return await buffer.send(QUEUE, Entry(body, {}))
        finally:
            buffer.leave()

    return await asyncio.gather(*(one(body) for body in bodies), return_exceptions=True)


def test_each_record_gets_its_own_entrys_answer_accepted_refused_or_missing() -> None:
    def answer(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        by_body = {entry["MessageBody"]: entry for entry in entries}
        return [by_body["ok"]], [by_body["refused"]]  # "unanswered" is in neither list

    sqs = _Sqs(answer)
    results = asyncio.run(_send_all(RequeueBuffer(sqs, offload=_direct), ["ok", "refused", "unanswered"]))  # type: ignore[arg-type]
    assert len(sqs.calls) == 1
    assert results[0] == "m-ok"
    assert isinstance(results[1], RequeueError) and "InternalError" in str(results[1])
    assert isinstance(results[2], RequeueError) and "no answer for this entry" in str(results[2])


def test_a_call_that_raises_fails_every_entry_of_it() -> None:
    def answer(entries: list[dict[str, Any]]) -> Any:
        raise ConnectionError("endpoint unreachable")

    results = asyncio.run(_send_all(RequeueBuffer(_Sqs(answer), offload=_direct), ["a", "b"]))  # type: ignore[arg-type]
    assert all(isinstance(result, RequeueError) for result in results)


def test_calls_hold_at_most_ten_entries_and_256_kib() -> None:
    sqs = _Sqs(lambda entries: (entries, []))
    big = ["x" * (MAX_MESSAGE_BYTES // 2 - 10) + str(index) for index in range(3)]
    small = [f"s{index}" for index in range(12)]
    results = asyncio.run(_send_all(RequeueBuffer(sqs, offload=_direct), big + small))  # type: ignore[arg-type]
    assert not [result for result in results if isinstance(result, BaseException)]
    for entries in sqs.calls:
        assert len(entries) <= 10
        assert sum(len(entry["MessageBody"]) for entry in entries) <= MAX_MESSAGE_BYTES
    assert sorted(entry["MessageBody"] for entries in sqs.calls for entry in entries) == sorted(big + small)


def test_a_delay_over_900_s_is_refused_before_any_call() -> None:
    buffer = RequeueBuffer(_Sqs(lambda entries: (entries, [])), offload=_direct)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="900"):
        asyncio.run(buffer.send(QUEUE, Entry("a", {}, delay_s=901)))
