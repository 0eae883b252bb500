"""One request and its response: routing, choosing an endpoint, connecting, retrying, failing.

Status codes the proxy gives by itself (Ingress semantics notes; RFC 9110 §15):
404 nothing matches; 503 the backend has no ready endpoint (or no Service, or no such port);
502 the endpoint refused, reset or sent a bad response; 504 connecting or reading timed out;
308 plain HTTP to a host with TLS; 421 a TLS connection whose SNI name chose another host's
certificate than the Host header's (``_tls.misdirected``). Connect failures move on to the
next endpoint (up to ``Limits.connect_attempts``); a request without a body whose *reused*
connection turns out to have been closed by the endpoint is sent once more on a new
connection, as the request cannot have been processed (RFC 9112 §9.3.1).
"""

from __future__ import annotations

import asyncio
from random import getrandbits
from typing import TYPE_CHECKING

from kexpose.proxy._messages import RequestHead, local_response
from kexpose.proxy._tls import misdirected
from kexpose.proxy.routes import Endpoint, Route

if TYPE_CHECKING:
    from kexpose.proxy._balancer import Balancer
    from kexpose.proxy._downstream import ClientConnection
    from kexpose.proxy._upstream import UpstreamConnection

__all__ = ["Exchange"]


class Exchange:
    """Per-request state. No ``__slots__``: most fields keep their class-level default for most
    requests, and an instance that sets only what differs is cheaper to create."""

    # Set for every request (``__init__``).
    client: ClientConnection
    started: float
    """``time.perf_counter()`` when the head was complete."""
    req: RequestHead
    request_id: bytes | None
    has_body: bool
    request_done: bool
    keep_alive: bool = True
    """llhttp's verdict (``Connection``, HTTP version); set by the client connection."""

    # Filled in as the exchange goes on.
    route: Route | None = None
    endpoint: Endpoint | None = None
    upstream: UpstreamConnection | None = None
    pending: list[bytes] | None = None
    pending_bytes = 0
    status = 0
    response_started = False
    response_bytes = 0
    finished = False
    retried = False
    error = ""
    _tried: tuple[Endpoint, ...] = ()
    _rid_line = b""
    _balancer: Balancer | None = None
    _counted = False

    def __init__(self, client: ClientConnection, started: float, req: RequestHead) -> None:
        self.client = client
        self.started = started
        self.req = req
        self.request_id = req.request_id
        self.has_body = has_body = req.chunked or req.content_length > 0
        self.request_done = not has_body

    # --- dispatch -----------------------------------------------------------------------------

    def start(self) -> None:
        """Route and send; called once the head is complete and earlier exchanges are done."""
        req = self.req
        if req.status:
            self.respond(req.status, close=True)
            return
        plane = self.client.plane
        table = plane.table
        sni = self.client.sni
        if sni is not None and sni != req.host and misdirected(table.certificates, sni, req.host):
            self.error = f"TLS handshake for {sni}, Host {req.host}"
            self.respond(421)
            return
        memo = req.memo
        if memo is not None and memo[0] is table:
            _, vhost, route = memo
        else:
            vhost = table.virtual_host(req.host)
            route = vhost.route(req.path)
            req.memo = (table, vhost, route)
        if vhost.tls and self.client.scheme == b"http" and plane.settings.ssl_redirect:
            self._redirect()
            return
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
        self.endpoint = endpoint
        conn = plane.pool.take(endpoint)
        if conn is not None:
            self._attach(conn)
        else:
            plane.spawn(plane.pool.connect(endpoint), self._connected)

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
        if nxt is None:
            self.error = (
                f"connect {self.endpoint[0]}:{self.endpoint[1]}: {exc or type(exc).__name__}"
            )
            self.respond(504 if timed_out else 502)
            return
        self.endpoint = nxt
        conn = plane.pool.take(nxt)
        if conn is not None:
            self._attach(conn)
        else:
            plane.spawn(plane.pool.connect(nxt), self._connected)

    def _attach(self, conn: UpstreamConnection) -> None:
        self.upstream = conn
        conn.attach(self)
        balancer = self._balancer
        if balancer is not None and balancer.tracks and not self._counted:
            balancer.started(self.endpoint)  # type: ignore[arg-type]
            self._counted = True
        req = self.req
        if self.request_id is None:
            self._rid_line = b"\r\nx-request-id: " + self.new_request_id()
        if req.host_header is None and self.endpoint is not None:  # HTTP/1.0 without Host
            host = b"\r\nhost: %b" % self.endpoint[0].encode()
            head = req.prefix + host + self._rid_line + self.client.forwarded + req.suffix
        else:
            head = req.prefix + self._rid_line + self.client.forwarded + req.suffix
        transport = conn.transport
        assert transport is not None
        if self.pending:
            # Bodies are never replayed (only bodiless requests are retried), so the buffered
            # part goes out once and is dropped.
            transport.write(head + b"".join(self.pending))
            self.pending = None
            if self.pending_bytes > self.client.plane.settings.limits.high_water:
                self.client.resume_reading_for_upstream()
            self.pending_bytes = 0
        else:
            transport.write(head)
        if self.request_done:
            self.client.waiting_for_upstream()

    def new_request_id(self) -> bytes:
        """ingress-nginx's ``$req_id``: the client's X-Request-ID, else 16 random bytes in hex
        (not for security: it only has to be unique enough to find a request in the logs)."""
        rid = self.request_id = b"%032x" % getrandbits(128)
        return rid

    def _redirect(self) -> None:
        port = self.client.plane.settings.https_redirect_port
        host = self.req.host
        authority = host.encode("idna") if host else b""
        if port != 443:
            authority += b":%d" % port
        target = self.req.target if self.req.target.startswith(b"/") else b"/"
        self.respond(308, headers=((b"location", b"https://%b%b" % (authority, target)),))

    # --- request body -------------------------------------------------------------------------

    def send_body(self, data: bytes) -> None:
        if self.finished:
            return  # answered already (404, early response): the rest of the body is dropped
        conn = self.upstream
        if conn is not None:
            conn.write(data)
            return
        if self.pending is None:
            self.pending = [data]
        else:
            self.pending.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > self.client.plane.settings.limits.high_water:
            self.client.pause_reading_for_upstream()

    def end_body(self) -> None:
        self.request_done = True
        if self.upstream is not None and not self.finished:
            self.client.waiting_for_upstream()

    # --- endings ------------------------------------------------------------------------------

    def respond(
        self, status: int, *, close: bool = False, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        """Answer locally (errors, redirects) and finish."""
        if close or self.req.upgrade is not None:
            self.keep_alive = False
        self.status = status
        self.client.write(
            local_response(
                status,
                close=not self.keep_alive or self.client.closing,
                head_only=self.req.method == b"HEAD",
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
        if self._counted:
            self._balancer.finished(self.endpoint)  # type: ignore[union-attr,arg-type]
        client = self.client
        client.plane.record(self)
        client.exchange_done(self)

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
            # A reused connection the endpoint had closed: nothing of the response arrived and
            # there is no body, so the request cannot have been processed; send it again.
            self.retried = True
            self.upstream = None
            conn.exchange = None
            plane = self.client.plane
            plane.spawn(plane.pool.connect(self.endpoint), self._connected)
            return
        self.upstream_failed(conn, why)

    def upstream_failed(self, conn: UpstreamConnection, why: str) -> None:
        if self.finished:
            return
        conn.exchange = None
        conn.abort()
        self.upstream = None
        if self.route is not None:
            kind = "reset" if "closed" in why or "reset" in why.lower() else "bad_response"
            self.client.plane.metrics.upstream_error(
                self.route.ingress, self.route.backend.key, kind
            )
        self._fail(502, why)

    def timed_out(self) -> None:
        conn, self.upstream = self.upstream, None
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
            self.client.abort()
            self.response_complete()
        else:
            self.respond(status, close=not self.request_done)

    def cancel(self) -> None:
        """The client went away: give up, without answering."""
        if self.finished:
            return
        self.finished = True
        conn, self.upstream = self.upstream, None
        if conn is not None:
            conn.exchange = None
            conn.abort()
        if self._counted:
            self._balancer.finished(self.endpoint)  # type: ignore[union-attr,arg-type]
        if not self.status:
            self.status = 499  # nginx's "client closed request", for the log and metrics
        self.client.plane.record(self)
