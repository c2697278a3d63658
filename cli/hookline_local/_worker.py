"""Child-process entry point: one Lambda execution environment for one function.

Run as a script (``python -I _worker.py '<config json>'``) with the function's environment already in place, so
the function builds its clients against the local stack. Like Lambda it imports the handler once (init), then
serves invocations one at a time: requests arrive as JSON lines on stdin, results leave as JSON lines on the
response pipe, and the function's own stdout/stderr (logs, EMF metrics) stay free for the parent to read. After
each invocation an end marker on stdout tells the parent that everything the invocation printed has been read.
stdin reaching EOF ends the environment; a timeout or a crash ends it from the parent's side (kill).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

END_MARKER = "\x1ehookline-invocation-end "


class LambdaContext:
    """The context object Lambda's Python runtime passes to the handler."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = invoked_function_arn
        # A string, as in the real runtime.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out."""
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        """Write to the function's log, as context.log does."""
        sys.stdout.write(message)


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "ok": False,
        "error_type": error_type or type(exc).__name__,
        "error_message": str(exc),
        "stack_trace": traceback.format_exception(exc),
    }


def _log_error(payload: dict[str, Any]) -> None:
    # The runtime logs unhandled errors in this shape before reporting them.
    sys.stderr.write(f"[ERROR] {payload['error_type']}: {payload['error_message']}\n")
    sys.stderr.write("".join(payload.get("stack_trace", [])))
    sys.stderr.flush()


def main() -> int:
    """Init the handler, then serve invocations until stdin closes."""
    config = json.loads(sys.argv[1])
    response = os.fdopen(int(config["response_fd"]), "w", buffering=1, encoding="utf-8")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    def send(message: dict[str, Any]) -> None:
        response.write(json.dumps(message) + "\n")
        response.flush()

    sys.path[:0] = [config["code_dir"], *config["layer_dirs"]]
    module_name, _, function_name = config["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name.replace("/", ".")), function_name)
    except BaseException as exc:  # noqa: BLE001 - any init failure is reported, like Runtime.ImportModuleError
        payload = _error(exc, "Runtime.ImportModuleError")
        _log_error(payload)
        send({"type": "init", **payload})
        return 1
    send({"type": "init", "ok": True})
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["request_id"], int(request["deadline_ms"]), config["function_arn"])
        message: dict[str, Any]
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's result
            message = _error(exc)
            _log_error(message)
        else:
            try:
                message = {"ok": True, "payload": json.loads(json.dumps(result))}
            except (TypeError, ValueError) as exc:
                message = _error(exc, "Runtime.MarshalError")
                _log_error(message)
        sys.stdout.write(f"\n{END_MARKER}{request['request_id']}\n")
        sys.stdout.flush()
        sys.stderr.flush()
        send({"type": "result", "request_id": request["request_id"], **message})
    return 0


if __name__ == "__main__":
    sys.exit(main())
