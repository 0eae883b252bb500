"""One request and its response: routing, choosing an endpoint, connecting, retrying, failing.

Status codes the proxy gives by itself (Ingress semantics notes; RFC 9110 §15):
404 nothing matches; 503 the backend has no ready endpoint (or no Service, or no such port);
502 the endpoint refused, reset or sent a bad response; 504 connecting or reading timed out;
308 plain HTTP to a host with TLS. Connect failures move on to the next endpoint (up to
``Limits.connect_attempts``); a request without a body whose *reused* connection turns out to
have been closed by the endpoint is sent once more on a new connection, as the request cannot
have been processed.
"""

from __future__ import annotations

import asyncio
from random import getrandbits
from typing import TYPE_CHECKING, Final

from kexpose.proxy._messages import chunk, local_response
from kexpose.proxy.routes import Endpoint, Route

if TYPE_CHECKING:
    from kexpose.proxy._balancer import Balancer
    from kexpose.proxy._downstream import ClientConnection
    from kexpose.proxy._upstream import UpstreamConnection

__all__ = ["Exchange"]

_LAST_CHUNK: Final = b"0\r\n\r\n"
_CHUNKED: Final = b"transfer-encoding: chunked\r\n"


class Exchange:
    __slots__ = (
        "_balancer",
        "_counted",
        "_tried",
        "agent",
        "chunked",
        "client",
        "connection_options",
        "endpoint",
        "error",
        "finished",
        "forwarded_port",
        "has_body",
        "head_request",
        "host",
        "host_header",
        "http10",
        "keep_alive",
        "local_status",
        "method",
        "parts",
        "path",
        "pending",
        "pending_bytes",
        "request_done",
        "request_id",
        "response_bytes",
        "response_started",
        "retried",
        "route",
        "started",
        "status",
        "target",
        "transfer",
        "upgrade",
        "upgrade_value",
        "upstream",
    )

    def __init__(self, client: ClientConnection, started: float) -> None:
        self.client = client
        self.started = started
        self.method = b""
        self.target = b""
        self.parts: list[bytes] = []
        self.host_header: bytes | None = None
        self.host = ""
        self.path = ""
        self.request_id: bytes | None = None
        self.agent = b""
        self.forwarded_port = b""
        self.connection_options: frozenset[bytes] | None = None
        self.upgrade_value: bytes | None = None
        self.transfer: bytes | None = None
        self.keep_alive = True
        self.http10 = False
        self.head_request = False
        self.chunked = False
        self.has_body = False
        self.upgrade = False
        self.request_done = False
        self.local_status = 0
        self.route: Route | None = None
        self.endpoint: Endpoint | None = None
        self.upstream: UpstreamConnection | None = None
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.status = 0
        self.response_started = False
        self.response_bytes = 0
        self.finished = False
        self.retried = False
        self.error = ""
        self._tried: tuple[Endpoint, ...] = ()
        self._balancer: Balancer | None = None
        self._counted = False

    # --- dispatch -----------------------------------------------------------------------------

    def start(self) -> None:
        """Route and send; called once the head is complete and earlier exchanges are done."""
        if self.local_status:
            self.respond(self.local_status, close=True)
            return
        plane = self.client.plane
        vhost = plane.table.virtual_host(self.host)
        if vhost.tls and self.client.scheme == b"http" and plane.settings.ssl_redirect:
            self._redirect()
            return
        route = vhost.route(self.path)
        if route is None:
            self.respond(404)
            return
        self.route = route
        balancer = plane.balancers.get(route.backend.key)
        endpoint = balancer.pick() if balancer is not None else None
        if balancer is None or endpoint is None:
            self.error = route.backend.problem or "no ready endpoint"
            self.respond(503)
            return
        self._balancer = balancer
        self._send_to(endpoint, plane.pool.take(endpoint))

    def _send_to(self, endpoint: Endpoint, conn: UpstreamConnection | None) -> None:
        self.endpoint = endpoint
        if conn is not None:
            self._attach(conn)
        else:
            self.client.plane.spawn(self.client.plane.pool.connect(endpoint), self._connected)

    def _connected(self, task: asyncio.Task[UpstreamConnection]) -> None:
        plane = self.client.plane
        if task.cancelled():
            return
        exc = task.exception()
        if self.finished:
            if exc is None:
                plane.pool.give(task.result())  # a fresh connection is still worth keeping
            return
        if exc is None:
            self._attach(task.result())
            return
        assert self.endpoint is not None
        assert self.route is not None
        timed_out = isinstance(exc, TimeoutError)
        kind = "connect_timeout" if timed_out else "connect_error"
        plane.metrics.upstream_error(self.route.ingress, self.route.backend.key, kind)
        self._tried += (self.endpoint,)
        nxt = None
        if self._balancer is not None and len(self._tried) < plane.settings.limits.connect_attempts:
            nxt = self._balancer.pick(self._tried)
        if nxt is not None:
            self._send_to(nxt, plane.pool.take(nxt))
            return
        self.error = f"connect {self.endpoint[0]}:{self.endpoint[1]}: {exc or type(exc).__name__}"
        self.respond(504 if timed_out else 502)

    def _attach(self, conn: UpstreamConnection) -> None:
        self.upstream = conn
        conn.attach(self)
        if not self._counted and self._balancer is not None and self.endpoint is not None:
            self._balancer.started(self.endpoint)
            self._counted = True
        head = self._head()
        if self.pending:
            # Bodies are never replayed (only bodiless requests are retried), so the buffered
            # part goes out once and is dropped.
            conn.write(head + b"".join(self.pending))
            self.pending = []
            if self.pending_bytes > self.client.plane.settings.limits.high_water:
                self.client.resume_reading_for_upstream()
            self.pending_bytes = 0
        else:
            conn.write(head)
        if self.request_done:
            self.client.waiting_for_upstream()

    def _head(self) -> bytes:
        client = self.client
        host = self.host_header
        parts = [self.method, b" ", self.target, b" HTTP/1.1\r\n", *self.parts]
        if host is None and self.endpoint is not None:  # HTTP/1.0 without Host
            parts.append(b"host: %b\r\n" % self.endpoint[0].encode())
        if self.request_id is None:
            # ingress-nginx's $req_id: the client's X-Request-ID, else 16 random bytes in hex.
            self.request_id = b"%032x" % getrandbits(128)
            self.parts.append(b"x-request-id: %b\r\n" % self.request_id)
            parts.append(self.parts[-1])
        parts.append(client.forwarded)
        parts.append(
            b"x-forwarded-host: %b\r\nx-forwarded-port: %b\r\n" % (host or b"", self.forwarded_port)
        )
        if self.chunked:
            parts.append(_CHUNKED)
        if self.upgrade:
            parts.append(b"connection: upgrade\r\nupgrade: %b\r\n" % (self.upgrade_value or b""))
        parts.append(b"\r\n")
        return b"".join(parts)

    def _redirect(self) -> None:
        port = self.client.plane.settings.https_redirect_port
        authority = self.host.encode("idna") if self.host else b""
        if port != 443:
            authority += b":%d" % port
        target = self.target if self.target.startswith(b"/") else b"/"
        self.respond(308, headers=((b"location", b"https://%b%b" % (authority, target)),))

    # --- request body -------------------------------------------------------------------------

    def send_body(self, data: bytes) -> None:
        if self.finished:
            return  # answered already (404, early response): the rest of the body is dropped
        if self.chunked:
            data = chunk(data)
        conn = self.upstream
        if conn is not None:
            conn.write(data)
            return
        self.pending.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > self.client.plane.settings.limits.high_water:
            self.client.pause_reading_for_upstream()

    def end_body(self) -> None:
        self.request_done = True
        if self.finished:
            return
        if self.chunked:
            if self.upstream is not None:
                self.upstream.write(_LAST_CHUNK)
            else:
                self.pending.append(_LAST_CHUNK)

    # --- endings ------------------------------------------------------------------------------

    def respond(
        self, status: int, *, close: bool = False, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        """Answer locally (errors, redirects) and finish."""
        if close or self.upgrade:
            self.keep_alive = False
        self.status = status
        self.client.write(
            local_response(
                status,
                close=not self.keep_alive or self.client.closing,
                head_only=self.head_request,
                headers=headers,
            )
        )
        self.response_complete()

    def response_complete(self) -> None:
        if self.finished:
            return
        self.finished = True
        conn, self.upstream = self.upstream, None
        if conn is not None and conn.exchange is self:
            # Answered before the endpoint finished (a client error mid-body): the endpoint's
            # connection is in an unknown state and is not reused.
            conn.exchange = None
            conn.abort()
        if self._counted and self._balancer is not None and self.endpoint is not None:
            self._balancer.finished(self.endpoint)
        self.client.plane.record(self)
        self.client.exchange_done(self)

    def upstream_lost(self, conn: UpstreamConnection, why: str) -> None:
        """The endpoint closed the connection before the response was complete."""
        if self.finished:
            return
        if (
            not self.response_started
            and not self.retried
            and not self.has_body
            and self.request_done
            and conn.requests > 1
            and self.endpoint is not None
        ):
            # A reused connection the endpoint had closed (RFC 9112 §9.3.1 allows retrying a
            # request when nothing of the response arrived; without a body it is safe).
            self.retried = True
            self.upstream = None
            self.client.plane.spawn(self.client.plane.pool.connect(self.endpoint), self._connected)
            return
        self.upstream_failed(conn, why)

    def upstream_failed(self, conn: UpstreamConnection, why: str) -> None:
        if self.finished:
            return
        conn.exchange = None
        conn.abort()
        if self.route is not None:
            kind = "reset" if "closed" in why or "reset" in why.lower() else "bad_response"
            self.client.plane.metrics.upstream_error(
                self.route.ingress, self.route.backend.key, kind
            )
        self._fail(502, why)

    def timed_out(self) -> None:
        conn = self.upstream
        if conn is not None:
            conn.exchange = None
            conn.abort()
        if self.route is not None:
            self.client.plane.metrics.upstream_error(
                self.route.ingress, self.route.backend.key, "read_timeout"
            )
        self._fail(504, "endpoint did not answer in time")

    def _fail(self, status: int, why: str) -> None:
        self.error = why
        if self.response_started:
            # Part of the response is out: the only honest signal left is cutting the
            # connection (RFC 9112 §9.6 "incomplete message").
            self.keep_alive = False
            self.status = status if not self.status else self.status
            self.client.abort()
            self.response_complete()
        else:
            self.respond(status, close=not self.request_done)

    def cancel(self) -> None:
        """The client went away: give up, without answering."""
        if self.finished:
            return
        self.finished = True
        conn = self.upstream
        self.upstream = None
        if conn is not None:
            conn.exchange = None
            conn.abort()
        if self._counted and self._balancer is not None and self.endpoint is not None:
            self._balancer.finished(self.endpoint)
        if not self.status:
            self.status = 499  # nginx's "client closed request", for the log and metrics
        self.client.plane.record(self)
