"""The loopback HTTP server of the tests lives in hookline_local.loopback (the demo's receivers use it too).

This module keeps the import path the suites and benchmarks use.
"""

from __future__ import annotations

from hookline_local.loopback import Handler, LoopbackServer, RecordedRequest, Reply, loopback_server

__all__ = ["Handler", "LoopbackServer", "RecordedRequest", "Reply", "loopback_server"]
