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
from random import getrandbits, random
from typing import TYPE_CHECKING

from kexpose.proxy.dataplane._grpc import grpc_local_response, is_grpc
from kexpose.proxy.dataplane._gwplan import choose_backend, cors, forwarded_prefix, location, select
from kexpose.proxy.dataplane._messages import RequestHead, local_response
from kexpose.proxy.dataplane._mirror import MirrorCopy, start_mirrors
from kexpose.proxy.dataplane._tls import misdirected
from kexpose.proxy.filters import HeaderModifier
from kexpose.proxy.routes import Endpoint, GatewayRule, Route, RouteTable, WeightedBackend

if TYPE_CHECKING:
    from kexpose.proxy.dataplane._balancer import Balancer
    from kexpose.proxy.dataplane._messages import HeadRewrite
    from kexpose.proxy.dataplane._roles import Downstream, UpstreamPool
    from kexpose.proxy.dataplane._upstream import Upstream

__all__ = ["Exchange"]


class Exchange:
    """Per-request state. No ``__slots__``: most fields keep their class-level default for most
    requests, and an instance that sets only what differs is cheaper to create."""

    # Set for every request (``__init__``).
    client: Downstream
    """The HTTP/1.1 connection or HTTP/2 stream the request came on."""
    started: float
    """``time.perf_counter()`` when the head was complete."""
    req: RequestHead
    request_id: bytes | None
    has_body: bool
    request_done: bool
    keep_alive: bool = True
    """llhttp's verdict (``Connection``, HTTP version); set by the client connection."""

    # Filled in as the exchange goes on.
    route: Route | WeightedBackend | None = None
    """What metrics and the access log label the request with (``.ingress``, ``.backend``)."""
    rule: GatewayRule | None = None
    """The HTTPRoute rule that took the request (Gateway ports only)."""
    prefix: bytes | None = None
    """The request line and header lines to forward when a filter changed them."""
    auth_headers: HeadRewrite | None = None
    """Request header changes of edge authentication (``_guard``), applied last."""
    response_modifiers: tuple[HeaderModifier, ...] = ()
    """Response header changes of the rule and its backend (Gateway ports only)."""
    _timers: tuple[asyncio.TimerHandle, ...] = ()
    retries_left = 0
    """``HTTPRouteRetry.attempts`` still to spend (bodiless requests only: a body is streamed,
    never kept, so it cannot be sent again)."""
    _backend_timer: asyncio.TimerHandle | None = None
    endpoint: Endpoint | None = None
    upstream: Upstream | None = None
    pending: list[bytes] | None = None
    pending_bytes = 0
    status = 0
    response_started = False
    response_bytes = 0
    finished = False
    retried = False
    error = ""
    mirrors: tuple[MirrorCopy, ...] = ()
    """Copies of this request on their way to the rule's mirror backends (``_mirror``)."""
    _tried: tuple[Endpoint, ...] = ()
    _rid_line = b""
    _balancer: Balancer | None = None
    _pool: UpstreamPool
    _counted = False

    def __init__(self, client: Downstream, started: float, req: RequestHead) -> None:
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
        if self.client.gateway is not None:
            self._start_gateway(table, self.client.gateway)
            return
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
        if route.auth is not None:  # edge authentication before the backend (``_guard``)
            plane.guard.check(self, route.auth, lambda: self._dispatch(route))
            return
        self._dispatch(route)

    def _start_gateway(self, table: RouteTable, key: tuple[str, int]) -> None:
        """A request on a Gateway port: listener, host and rule (``_gwplan``), then filters."""
        req = self.req
        port = table.gateway_ports.get(key)
        if port is None:
            self.error = "the Gateway listener is gone"
            self.respond(404)
            return
        sni = self.client.sni
        if (
            sni is not None
            and sni != req.host
            and port.listener(sni) is not port.listener(req.host)
        ):
            # HTTPRouteHTTPSListenerDetectMisdirectedRequests: the handshake chose another
            # listener (and certificate) than the Host belongs to (RFC 9110 §15.5.20).
            self.error = f"TLS handshake for {sni}, Host {req.host}"
            self.respond(421)
            return
        found = select(port, req)
        rule = found.rule
        if rule is None:
            self.respond(found.status)
            return
        self.rule = rule
        if rule.error is not None:
            self.error = rule.error
            self.respond(rule.failure_status)  # a GRPCRoute's: UNAVAILABLE
            return
        preflight, cors_headers = cors(rule, req)
        if preflight is not None:
            self._preflight(rule, preflight)
            return
        if rule.auth is not None:  # edge authentication before the backend (``_guard``)
            plane = self.client.plane
            plane.guard.check(
                self, rule.auth, lambda: self._serve_rule(port.port, rule, cors_headers)
            )
            return
        self._serve_rule(port.port, rule, cors_headers)

    def _preflight(self, rule: GatewayRule, headers: tuple[tuple[bytes, bytes], ...]) -> None:
        """Answer a CORS preflight with the rule's CORS filter alone, before edge auth's
        mechanism.

        A browser sends the preflight without credentials (Fetch standard, "CORS-preflight
        fetch": credentials mode "omit"): a mechanism would answer every one 401, and the
        browser would then refuse every cross-origin call that needs a preflight.
        ingress-nginx answers it in nginx's rewrite phase, before auth_request and auth_basic
        (access phase); Envoy (Gateway) runs its cors filter before ext_authz and jwt_authn.
        So the preflight goes first whatever order the rule lists its filters in (gateway-api
        v1.6.3 ``apis/v1/httproute_types.go``, ``HTTPRouteRule.Filters``: order is a SHOULD,
        and a fixed one is documented here). Nothing is given away: the answer never reaches
        the backend and carries only the headers the filter computes (``HTTPCORSFilter``: an
        OK status, without the allow headers for an origin that is not allowed), and the
        actual request still needs its credentials. What needs none still holds (``admits``):
        a broken auth configuration answers 503 and the allow-list 403 (edge-auth.md, "Order:
        source-range allow-list first").
        """
        if rule.auth is not None and not self.client.plane.guard.admits(self, rule.auth):
            return
        self.respond(200, headers=headers)  # never the backend's, nor mirrored (HTTPCORSFilter)

    def _serve_rule(
        self, listener_port: int, rule: GatewayRule, cors_headers: HeaderModifier | None
    ) -> None:
        req = self.req
        if rule.redirect is not None:
            scheme = self.client.scheme.decode()
            target = location(rule, req, scheme=scheme, listener_port=listener_port)
            self.respond(rule.redirect.status, headers=((b"location", target),))
            return
        chosen = choose_backend(rule, random())  # noqa: S311 - traffic splitting, not secrets
        if chosen is None:
            self.error = "the share of the rule's invalid backends"
            self.respond(rule.failure_status)
            return
        self.route = chosen
        self.prefix = forwarded_prefix(req, rule, chosen)
        self.response_modifiers = tuple(
            m for m in (rule.response_headers, chosen.response_headers, cors_headers) if m
        )
        loop = self.client.plane.loop
        if rule.request_timeout:
            self._timers += (loop.call_later(rule.request_timeout, self._deadline, "request"),)
        if rule.retry is not None and not self.has_body:
            self.retries_left = rule.retry.attempts
        if rule.mirrors and req.upgrade is None:
            self._mirror(rule)
        self._dispatch(chosen)

    def _mirror(self, rule: GatewayRule) -> None:
        """HTTPRouteRequestMirror: start the rule's copies of this request (``_mirror``); the
        exchange feeds them the body and never waits for them."""
        if self.request_id is None:  # the copies and the primary share one X-Request-ID
            self._rid_line = b"\r\nx-request-id: " + self.new_request_id()
        req = self.req
        head = forwarded_prefix(req, rule, None) + self._rid_line + self.client.forwarded
        self.mirrors = start_mirrors(
            self.client.plane,
            rule.mirrors,
            head,
            req.suffix,
            has_body=self.has_body,
            add_host=req.host_header is None,
        )

    def _deadline(self, which: str) -> None:
        """``HTTPRouteTimeouts``: the whole request, or the backend's answer, took too long."""
        if self.finished:
            return
        if which == "backend" and self.retry_for(504):
            # HTTPRouteRetryBackendTimeout: a try that timed out counts as a 504 for retries.
            conn, self.upstream = self.upstream, None
            if conn is not None:
                conn.exchange = None
                conn.abort()
            self.retry()
            return
        self.timed_out(f"the {which} timeout of the route passed")

    # --- route retries (HTTPRouteRetry) ---------------------------------------------------------

    def retry_for(self, status: int) -> bool:
        """Whether a try that ended in ``status`` (502 for a refused or reset connection) is
        tried again: the rule lists the code, attempts are left, and nothing was sent on."""
        rule = self.rule
        return (
            self.retries_left > 0
            and not self.response_started
            and self.request_done
            and rule is not None
            and rule.retry is not None
            and status in rule.retry.codes
        )

    def retry(self) -> None:
        """Send the request again, after the rule's backoff, to an endpoint of the same backend."""
        assert self.rule is not None
        assert self.rule.retry is not None
        self.retries_left -= 1
        if self._backend_timer is not None:
            self._backend_timer.cancel()
            self._backend_timer = None
        self.client.upstream_deadline = 0.0
        backoff = self.rule.retry.backoff or 0.0
        if backoff:
            self._timers += (self.client.plane.loop.call_later(backoff, self._try_again),)
        else:
            self._try_again()

    def _try_again(self) -> None:
        if self.finished or self.route is None:
            return
        if self._counted:
            self._balancer.finished(self.endpoint)  # type: ignore[union-attr,arg-type]
            self._counted = False
        self._tried = ()
        self._dispatch(self.route)

    def _dispatch(self, route: Route | WeightedBackend) -> None:
        plane = self.client.plane
        balancer = plane.balancers.get(route.backend.key)
        endpoint = balancer.pick() if balancer is not None else None
        if balancer is None or endpoint is None:
            self.error = route.backend.problem or "no ready endpoint"
            self.respond(503)
            return
        self._balancer = balancer
        self.endpoint = endpoint
        # h2c endpoints (appProtocol kubernetes.io/h2c) get a stream of a shared connection.
        pool: UpstreamPool = plane.h2c_pool if route.backend.protocol == "h2c" else plane.pool
        self._pool = pool
        conn = pool.take(endpoint)
        if conn is not None:
            self._attach(conn)
        else:
            plane.spawn(pool.connect(endpoint), self._connected)

    def _connected(self, task: asyncio.Task[Upstream]) -> None:
        plane = self.client.plane
        if task.cancelled():
            return
        exc = task.exception()
        if self.finished:
            if exc is None:
                task.result().release()  # a fresh connection is still worth keeping
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
            status = 504 if timed_out else 502
            if self.retry_for(status):  # HTTPRouteRetryConnectionError
                self.retry()
                return
            self.respond(status)
            return
        self.endpoint = nxt
        conn = self._pool.take(nxt)
        if conn is not None:
            self._attach(conn)
        else:
            plane.spawn(self._pool.connect(nxt), self._connected)

    def _attach(self, conn: Upstream) -> None:
        self.upstream = conn
        conn.attach(self)
        balancer = self._balancer
        if balancer is not None and balancer.tracks and not self._counted:
            balancer.started(self.endpoint)  # type: ignore[arg-type]
            self._counted = True
        req = self.req
        if self.request_id is None:
            self._rid_line = b"\r\nx-request-id: " + self.new_request_id()
        prefix = req.prefix if self.prefix is None else self.prefix
        if self.auth_headers is not None:
            prefix = self.auth_headers.apply(prefix)
        if req.host_header is None and self.endpoint is not None:  # HTTP/1.0 without Host
            host = b"\r\nhost: %b" % self.endpoint[0].encode()
            head = prefix + host + self._rid_line + self.client.forwarded + req.suffix
        else:
            head = prefix + self._rid_line + self.client.forwarded + req.suffix
        rule = self.rule
        if rule is not None and rule.backend_timeout and not self.retried:
            # Per try: a retried request gets the whole backend timeout again.
            loop = self.client.plane.loop
            timer = loop.call_later(rule.backend_timeout, self._deadline, "backend")
            self._backend_timer = timer
            self._timers += (timer,)
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
        for copy in self.mirrors:
            copy.feed(data)
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
        for copy in self.mirrors:
            copy.end()
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
        close = not self.keep_alive or self.client.closing
        if status >= 400 and is_grpc(self.req.fields):
            # A gRPC client reads grpc-status, not the HTTP status (``_grpc``).
            answer = grpc_local_response(status, self.error or f"HTTP {status}", close=close)
        else:
            answer = local_response(
                status, close=close, head_only=self.req.method == b"HEAD", headers=headers
            )
        self.client.write(answer)
        self.response_complete()

    def response_complete(self) -> None:
        if self.finished:
            return
        self.finished = True
        for timer in self._timers:
            timer.cancel()
        conn, self.upstream = self.upstream, None
        if conn is not None and conn.exchange is self:
            # Answered before the endpoint finished (a client error mid-body): the endpoint's
            # connection is in an unknown state and is not reused.
            conn.exchange = None
            conn.abort()
        if self._counted:
            self._balancer.finished(self.endpoint)  # type: ignore[union-attr,arg-type]
        client = self.client
        if self.pending is not None:
            # Answered with part of the body buffered for an upstream it never reached (auth
            # refused it while it arrived, connecting failed): drop it, and read on, so that
            # the rest of the body is drained and the connection serves its next request.
            self.pending = None
            if self.pending_bytes > client.plane.settings.limits.high_water:
                client.resume_reading_for_upstream()
            self.pending_bytes = 0
        client.plane.record(self)
        client.exchange_done(self)

    def upstream_lost(self, conn: Upstream, why: str) -> None:
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
            self.client.plane.spawn(self._pool.connect(self.endpoint), self._connected)
            return
        if self.retry_for(502):  # the endpoint reset or closed: a 502 for retries
            self.upstream = None
            conn.exchange = None
            conn.abort()
            self.retry()
            return
        self.upstream_failed(conn, why)

    def upstream_failed(self, conn: Upstream, why: str) -> None:
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

    def timed_out(self, why: str = "endpoint did not answer in time") -> None:
        conn, self.upstream = self.upstream, None
        if conn is not None:
            conn.exchange = None
            conn.abort()
        if self.route is not None:
            self.client.plane.metrics.upstream_error(
                self.route.ingress, self.route.backend.key, "read_timeout"
            )
        self._fail(504, why)

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
        if not self.request_done:
            for copy in self.mirrors:
                copy.abandon()  # a body cut short is not mirrored (a whole request stays sent)
        if self.finished:
            return
        self.finished = True
        for timer in self._timers:
            timer.cancel()
        conn, self.upstream = self.upstream, None
        if conn is not None:
            conn.exchange = None
            conn.abort()
        if self._counted:
            self._balancer.finished(self.endpoint)  # type: ignore[union-attr,arg-type]
        if not self.status:
            self.status = 499  # nginx's "client closed request", for the log and metrics
        self.client.plane.record(self)
