"""Invoke a function like Lambda: in a worker process per execution environment, or a callable in-process (tests)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from hookline_local._worker import END_MARKER, LambdaContext
from hookline_local.server import safe_base_environment

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookline_local.resolve import FunctionSpec

__all__ = ["CallableInvoker", "InvokeResult", "Invoker", "LambdaContext", "OutputHandler", "SubprocessInvoker"]

_WORKER = Path(__file__).with_name("_worker.py")
_log = logging.getLogger("hookline.local")
# OutputHandler(stream, line): stream is "stdout" or "stderr"; called on the reader thread, in order.
type OutputHandler = Callable[[str, str], None]


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of one invocation: a payload, or an error (raised, timed out, crashed)."""

    request_id: str
    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    timed_out: bool = False
    crashed: bool = False


class Invoker(Protocol):
    """One execution environment: invokes one function, one event at a time."""

    @property
    def busy(self) -> bool:
        """Whether an invocation is running."""
        ...

    def invoke(self, event: Any, *, request_id: str | None = None) -> InvokeResult:
        """Run the function on ``event``; never raises for the function's own failures."""
        ...

    def kill(self) -> bool:
        """End the environment now (a crash); return whether an invocation was running."""
        ...

    def close(self) -> None:
        """End the environment when idle."""
        ...


class CallableInvoker:
    """Runs a Python callable as the handler in a thread, with Lambda's context, timeout and result marshalling."""

    def __init__(  # noqa: PLR0913 - Lambda's context values and an injected clock, each a keyword
        self,
        handler: Callable[[Any, LambdaContext], Any],
        *,
        function_name: str = "local-function",
        function_arn: str | None = None,
        timeout_s: float = 3.0,
        memory_mb: int = 128,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._handler = handler
        self._name = function_name
        self._arn = function_arn or f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self._timeout_s = timeout_s
        self._memory_mb = memory_mb
        self._clock = clock
        self._lock = threading.Lock()
        self._abandon = threading.Event()
        self._busy = False

    def invoke(self, event: Any, *, request_id: str | None = None) -> InvokeResult:
        """Call the handler; a timeout or kill() abandons the thread (it cannot be stopped) and fails the call."""
        request_id = request_id or str(uuid.uuid4())
        with self._lock:
            self._abandon.clear()
            self._busy = True
            started = self._clock()
            context = LambdaContext(request_id, int((started + self._timeout_s) * 1000), self._arn)
            context.function_name = self._name
            context.memory_limit_in_mb = str(self._memory_mb)
            outcome: list[InvokeResult] = []
            done = threading.Event()

            def run() -> None:
                try:
                    result = self._handler(json.loads(json.dumps(event)), context)
                    payload = json.loads(json.dumps(result))
                    outcome.append(InvokeResult(request_id, True, payload))
                except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's result
                    outcome.append(InvokeResult(request_id, False, None, type(exc).__name__, str(exc)))
                finally:
                    done.set()

            threading.Thread(target=run, name=f"invoke-{self._name}", daemon=True).start()
            deadline = started + self._timeout_s
            while not done.is_set() and not self._abandon.is_set():
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                done.wait(min(remaining, 0.05))
            self._busy = False
            elapsed = (self._clock() - started) * 1000
            if self._abandon.is_set():  # killed: whatever the abandoned thread still returns is lost, as on Lambda
                return InvokeResult(request_id, False, None, "Runtime.ExitError", "killed", elapsed, crashed=True)
            if outcome:
                result = outcome[0]
                return InvokeResult(
                    result.request_id, result.ok, result.payload, result.error_type, result.error_message, elapsed
                )
            message = f"Task timed out after {self._timeout_s:.2f} seconds"
            return InvokeResult(request_id, False, None, "Sandbox.Timedout", message, elapsed, timed_out=True)

    @property
    def busy(self) -> bool:
        """Whether an invocation is running."""
        return self._busy

    def kill(self) -> bool:
        """Abandon the running invocation (it fails as a crash)."""
        busy = self._busy
        self._abandon.set()
        return busy

    def close(self) -> None:
        """Nothing to release."""


class SubprocessInvoker:
    """A worker process per execution environment, started on first use and after a crash or timeout."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        on_output: OutputHandler | None = None,
        python: str = sys.executable,
        init_timeout_s: float = 60.0,
        output_drain_timeout_s: float = 5.0,
    ) -> None:
        if spec.code_dir is None:
            raise ValueError(f"{spec.logical_id} has no local code directory")
        self._spec = spec
        self._on_output = on_output or (lambda stream, line: None)
        self._python = python
        self._init_timeout_s = init_timeout_s
        self._drain_timeout_s = output_drain_timeout_s
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._responses: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._ended: dict[str, threading.Event] = {}
        self._ended_lock = threading.Lock()
        self._busy = False
        self._closed = False
        self.cold_starts = 0

    @property
    def busy(self) -> bool:
        """Whether an invocation is running."""
        return self._busy

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def _end_event(self, request_id: str) -> threading.Event:
        with self._ended_lock:
            return self._ended.setdefault(request_id, threading.Event())

    def _emit(self, stream: str, line: str) -> None:
        try:
            self._on_output(stream, line)
        except Exception:  # a failing log/metric sink must not stop the reader (the end marker would be missed)
            _log.exception("%s: output handler failed", self._spec.logical_id)

    def _read_stdout(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith(END_MARKER):
                self._end_event(line[len(END_MARKER) :].strip()).set()
            elif line:
                self._emit("stdout", line)
        stream.close()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line:
                self._emit("stderr", line)
        stream.close()

    def _read_responses(self, fd: int, responses: queue.Queue[dict[str, Any] | None]) -> None:
        with os.fdopen(fd, "rb") as stream:
            for raw in stream:
                try:
                    responses.put(json.loads(raw))
                except ValueError:
                    _log.warning("%s: unreadable worker response %r", self._spec.logical_id, raw[:200])
        responses.put(None)  # EOF: the worker is gone

    def _start(self) -> InvokeResult | None:
        read_fd, write_fd = os.pipe()
        config = {
            "response_fd": write_fd,
            "code_dir": str(self._spec.code_dir),
            "layer_dirs": [str(path) for path in self._spec.layer_dirs],
            "handler": self._spec.handler,
            "function_arn": self._spec.arn,
        }
        env = safe_base_environment(self._spec.environment.get("AWS_REGION", "us-east-1"))
        env.update(self._spec.environment)
        try:
            process = subprocess.Popen(
                [self._python, "-I", str(_WORKER), json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                cwd=self._spec.code_dir,
                env=env,
            )
        finally:
            os.close(write_fd)
        self._process = process
        self.cold_starts += 1
        if self._closed:  # closed while this environment was being created (a pre-warm racing stop)
            self._terminate()
            return InvokeResult("", False, None, "Runtime.ExitError", "environment closed", crashed=True)
        responses: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._responses = responses
        name = self._spec.logical_id
        assert process.stdout is not None and process.stderr is not None
        threading.Thread(target=self._read_stdout, args=(process.stdout,), name=f"{name}-out", daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(process.stderr,), name=f"{name}-err", daemon=True).start()
        threading.Thread(
            target=self._read_responses, args=(read_fd, responses), name=f"{name}-resp", daemon=True
        ).start()
        try:
            init = responses.get(timeout=self._init_timeout_s)
        except queue.Empty:
            init = {"ok": False, "error_type": "Runtime.InitTimeout", "error_message": "init did not finish"}
        if init is None or not init.get("ok"):
            self._terminate()
            init = init or {"error_type": "Runtime.ExitError", "error_message": "worker exited during init"}
            return InvokeResult("", False, None, init.get("error_type"), init.get("error_message"), crashed=True)
        return None

    def start(self) -> InvokeResult | None:
        """Start the environment now (pre-warm); return the init error, if any."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return None
            return self._start()

    def invoke(self, event: Any, *, request_id: str | None = None) -> InvokeResult:
        """Invoke the function; a timeout kills the environment, as Lambda does."""
        request_id = request_id or str(uuid.uuid4())
        with self._lock:
            started = time.monotonic()
            if self._process is None or self._process.poll() is not None:
                failure = self._start()
                if failure is not None:
                    return InvokeResult(
                        request_id, False, None, failure.error_type, failure.error_message, crashed=True
                    )
            process = self._process
            assert process is not None and process.stdin is not None
            deadline_ms = int((time.time() + self._spec.timeout_s) * 1000)
            request = {"request_id": request_id, "deadline_ms": deadline_ms, "event": event}
            self._busy = True
            try:
                process.stdin.write((json.dumps(request) + "\n").encode())
                process.stdin.flush()
                response = self._responses.get(timeout=max(0.0, self._spec.timeout_s))
            except queue.Empty:
                self._terminate()
                elapsed = (time.monotonic() - started) * 1000
                message = f"Task timed out after {self._spec.timeout_s:.2f} seconds"
                return InvokeResult(request_id, False, None, "Sandbox.Timedout", message, elapsed, timed_out=True)
            except (BrokenPipeError, OSError):
                response = None
            finally:
                self._busy = False
            elapsed = (time.monotonic() - started) * 1000
            if response is None:
                code = process.wait()
                self._terminate()
                message = f"worker exited (status {code}) during the invocation"
                return InvokeResult(request_id, False, None, "Runtime.ExitError", message, elapsed, crashed=True)
            # Everything the invocation printed (EMF metrics above all) is handled before the result is returned.
            ended = self._end_event(request_id)
            ended.wait(self._drain_timeout_s)
            with self._ended_lock:
                self._ended.pop(request_id, None)
            return InvokeResult(
                request_id,
                bool(response.get("ok")),
                response.get("payload"),
                response.get("error_type"),
                response.get("error_message"),
                elapsed,
            )

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def kill(self) -> bool:
        """SIGKILL the worker (a crash mid-batch); the next invocation starts a fresh one."""
        busy = self._busy
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
        return busy

    def close(self, timeout_s: float = 1.0) -> None:
        """Close stdin (an idle worker exits at once); kill it if it lingers (e.g. still importing its code)."""
        self._closed = True
        process = self._process
        if process is None:
            return
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with self._lock:
            self._process = None
