"""httpcore's HTTP/1.1 connection pool with a single-pass assignment that hands each idle connection to one request.

httpcore 1.0.9's ``AsyncConnectionPool._assign_requests_to_connections`` runs on every request start and end. It
scans all connections once per connection (its keep-alive count) and once per queued request, probes every idle
socket with poll(), and hands the same idle HTTP/1.1 connection to every queued request of the pass: all but one
then fail with ``ConnectionNotAvailable``, re-queue and run the pass again. Measured with 100 requests in flight
(bench/delivery.py, docs/signing-netguard-http.md): about 20 ms of CPU per request and 1.8-2.6 s for a batch that
takes 0.2 s; the same fix is proposed upstream (encode/httpcore#1035, #1110) and was merged in the httpx2 fork.

This pass is linear in connections + requests, reserves a connection for the request it is handed to (so no
other request of any pass gets it, and no pass closes it while its request has yet to start), and probes a
connection's socket only when it is about to be reused. Everything else is httpcore's own: the request queue and
its wait, ``ConnectionNotAvailable`` retries, response streams, connection objects, the network backend.
"""

from __future__ import annotations

import httpcore

__all__ = ["Http11ConnectionPool"]


class Http11ConnectionPool(httpcore.AsyncConnectionPool):
    """``httpcore.AsyncConnectionPool`` for HTTP/1.1 only, with a linear assignment pass (see the module docstring).

    Relies on httpcore 1.0's pool internals (``_connections``, ``_requests``, the pool request's ``connection``),
    which tests/unit/test_http_pool.py exercises; the layer pins httpcore.
    """

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        queued = [request for request in self._requests if request.connection is None]
        if not queued and len(self._connections) <= self._max_keepalive_connections:
            # Nothing to hand out and no keep-alive surplus possible: closed or expired connections are dropped by
            # the next pass that needs a connection, before it counts them against max_connections.
            return []
        reserved = {id(request.connection) for request in self._requests if request.connection is not None}
        closing: list[httpcore.AsyncConnectionInterface] = []
        connections: list[httpcore.AsyncConnectionInterface] = []
        idle: list[httpcore.AsyncConnectionInterface] = []  # HTTP/1.1: idle = free to take a request
        for connection in self._connections:
            if connection.is_closed():
                continue
            connections.append(connection)
            if id(connection) not in reserved and connection.is_idle():
                idle.append(connection)
        for pool_request in queued:
            origin = pool_request.request.url.origin
            chosen = self._take_idle(idle, origin, closing)
            if chosen is None:
                if len(connections) - len(closing) >= self._max_connections:
                    if not idle:
                        break  # every connection is busy: the rest of the queue waits for the next pass
                    # Make room: close an idle connection to another origin.
                    closing.append(idle.pop(0))
                chosen = self.create_connection(origin)
                connections.append(chosen)
            reserved.add(id(chosen))
            pool_request.assign_to_connection(chosen)
        surplus = len(idle) - self._max_keepalive_connections
        if surplus > 0:
            closing.extend(idle[:surplus])
        gone = {id(connection) for connection in closing}
        self._connections = [connection for connection in connections if id(connection) not in gone]
        return closing

    @staticmethod
    def _take_idle(
        idle: list[httpcore.AsyncConnectionInterface],
        origin: httpcore.Origin,
        closing: list[httpcore.AsyncConnectionInterface],
    ) -> httpcore.AsyncConnectionInterface | None:
        """Remove and return the first idle connection to ``origin`` that has not expired; expired ones go to
        ``closing`` (the expiry check polls the socket, so only connections about to be reused are checked)."""
        index = 0
        while index < len(idle):
            connection = idle[index]
            if not connection.can_handle_request(origin):
                index += 1
                continue
            del idle[index]
            if connection.has_expired():
                closing.append(connection)
                continue
            return connection
        return None
