"""The client side of the proxy: one asyncio Protocol per accepted connection.

Requests are parsed with httptools (llhttp, strict: a request with both ``Content-Length`` and
``Transfer-Encoding``, duplicate differing lengths, bad chunk sizes or obsolete line folding is
refused, so no smuggling reaches an endpoint). Each request becomes an :class:`Exchange`;
exchanges run one at a time per connection, pipelined ones wait in order (RFC 9112 §9.3.2)
with reading paused. Deadlines (header, body, keep-alive, upstream read, tunnel idle) are a
single timestamp per connection that the data plane's sweeper checks, not a timer each.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Final

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from kexpose.proxy._exchange import Exchange
from kexpose.proxy._messages import (
    H_AGENT,
    H_CONNECTION,
    H_HOST,
    H_LENGTH,
    H_REQUEST_ID,
    H_TRANSFER,
    H_UPGRADE,
    REQUEST_HEADERS,
    connection_tokens,
    host_name,
    local_response,
)
from kexpose.proxy.routes import normalize_path

if TYPE_CHECKING:
    from kexpose.proxy._upstream import UpstreamConnection
    from kexpose.proxy.server import DataPlane

__all__ = ["ClientConnection"]

# Why reading from the client is paused (bits).
_PIPELINE: Final = 1
_UPSTREAM: Final = 2

_HOST_CACHE_MAX: Final = 4096  # distinct raw Host values remembered per process


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "_head_bytes",
        "_paused",
        "_paused_upstream",
        "building",
        "current",
        "deadline",
        "early",
        "forwarded",
        "in_head",
        "parser",
        "plane",
        "queue",
        "scheme",
        "transport",
        "tunnel",
        "upgrading",
        "upstream_deadline",
    )

    def __init__(self, plane: DataPlane, scheme: bytes) -> None:
        self.plane = plane
        self.scheme = scheme
        self.transport: asyncio.Transport | None = None
        self.parser = HttpRequestParser(self)
        self.building: Exchange | None = None
        self.current: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.tunnel: UpstreamConnection | None = None
        self.upgrading = False
        self.early: list[bytes] = []
        self.forwarded = b""
        self.deadline = 0.0
        """Reading the client: head, body or keep-alive idleness (0: none)."""
        self.upstream_deadline = 0.0
        """Waiting for the endpoint's next bytes (0: not waiting)."""
        self.in_head = False
        self._paused = 0
        self._paused_upstream: asyncio.Transport | None = None
        self._head_bytes = 0

    @property
    def closing(self) -> bool:
        return self.plane.closing

    # --- transport callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        ip = (peer[0] if isinstance(peer, tuple) else "").encode()
        proto = self.scheme
        # The same for every request on this connection, so built once.
        self.forwarded = (
            b"x-forwarded-for: %b\r\nx-real-ip: %b\r\nx-forwarded-proto: %b\r\n"
            b"x-forwarded-scheme: %b\r\n" % (ip, ip, proto, proto)
        )
        self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.header
        self.plane.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.plane.closed(self)
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        for ex in (self.current, self.building, *self.queue):
            if ex is not None:
                ex.cancel()
        self.current = self.building = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            self.touch_tunnel()
            return
        if self.upgrading:
            self.early.append(data)  # for the tunnel, once the endpoint says 101
            return
        self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as exc:
            tail = data[exc.args[0] :]
            if tail:
                self.early.append(tail)
        except HttpParserError as exc:
            self._bad_request(400, f"malformed request: {exc}")
            return
        if self._head_bytes > self.plane.settings.limits.max_head_bytes and self.in_head:
            self._bad_request(431, "request head too large")

    def eof_received(self) -> bool:
        # A half-closed client may still wait for its answer (RFC 9112 §9.6): keep the write
        # side open while an exchange is running, otherwise close.
        return self.current is not None

    def pause_writing(self) -> None:
        # The client reads slower than the endpoint sends: stop reading the endpoint.
        conn = self.tunnel or (self.current.upstream if self.current is not None else None)
        if conn is not None and conn.transport is not None:
            conn.transport.pause_reading()
            self._paused_upstream = conn.transport

    def resume_writing(self) -> None:
        transport, self._paused_upstream = self._paused_upstream, None
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    # --- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        now = self.plane.loop.time()
        self.building = Exchange(self, now)
        self.in_head = True
        if self.current is None:
            # A new head's clock starts when it starts (or, for the first one, at connect);
            # a pipelined head waits on the exchange before it instead.
            self.deadline = now + self.plane.settings.timeouts.header

    def on_url(self, url: bytes) -> None:
        ex = self.building
        assert ex is not None
        ex.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.building
        assert ex is not None
        kind = REQUEST_HEADERS.get(name.lower())
        if kind is None:
            ex.parts.append(b"%b: %b\r\n" % (name, value))
        elif kind == H_HOST:
            if ex.host_header is not None:
                ex.local_status = 400  # more than one Host (RFC 9112 §3.2)
            ex.host_header = value
            ex.parts.append(b"%b: %b\r\n" % (name, value))
        elif kind == H_LENGTH:
            ex.has_body = value.strip() != b"0"
            ex.parts.append(b"%b: %b\r\n" % (name, value))
        elif kind == H_REQUEST_ID:
            ex.request_id = value
            ex.parts.append(b"%b: %b\r\n" % (name, value))
        elif kind == H_AGENT:
            ex.agent = value
            ex.parts.append(b"%b: %b\r\n" % (name, value))
        elif kind == H_CONNECTION:
            tokens = connection_tokens(value)
            ex.connection_options = (ex.connection_options or frozenset()) | tokens
        elif kind == H_UPGRADE:
            ex.upgrade_value = value
        elif kind == H_TRANSFER:
            ex.transfer = value if ex.transfer is None else ex.transfer + b"," + value

    def on_headers_complete(self) -> None:
        ex = self.building
        assert ex is not None
        parser = self.parser
        plane = self.plane
        ex.method = method = parser.get_method()
        ex.keep_alive = parser.should_keep_alive()
        ex.http10 = parser.get_http_version() == "1.0"
        ex.head_request = method == b"HEAD"
        self._head_bytes = 0
        self.in_head = False
        self._check(ex, plane)
        if ex.connection_options:
            self._drop_connection_options(ex)
        if ex.has_body or ex.chunked:
            self.deadline = plane.loop.time() + plane.settings.timeouts.client_body
        else:
            self.deadline = 0.0
        if self.current is None:
            self.current = ex
            ex.start()
        else:
            self.queue.append(ex)
            self._pause(_PIPELINE)

    def on_body(self, data: bytes) -> None:
        ex = self.building
        assert ex is not None
        self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.client_body
        ex.send_body(data)

    def on_message_complete(self) -> None:
        ex = self.building
        assert ex is not None
        self.building = None
        self.deadline = 0.0
        ex.end_body()
        if ex.upgrade and not ex.finished:
            self.upgrading = True  # later bytes are the tunnel's, not HTTP
        if ex is self.current and ex.upstream is not None:
            self.waiting_for_upstream()
        elif self.current is None:
            self._idle()

    # --- request checks -----------------------------------------------------------------------

    def _check(self, ex: Exchange, plane: DataPlane) -> None:
        """Fill in host, path and framing, or set the status the request gets instead."""
        limits = plane.settings.limits
        target = ex.target
        if ex.local_status:
            return
        size = len(target) + sum(len(p) for p in ex.parts)
        if size > limits.max_head_bytes:
            ex.local_status = 414 if len(target) > limits.max_head_bytes else 431
            return
        if ex.method == b"CONNECT":
            ex.local_status = 405  # we are a reverse proxy, not a tunnel for arbitrary hosts
            return
        raw_host = ex.host_header
        if target[:1] != b"/":
            lowered = target[:8].lower()
            if lowered.startswith((b"http://", b"https://")):
                # absolute-form: the target's authority replaces Host (RFC 9112 §3.2.2)
                rest = target.split(b"//", 1)[1]
                slash = rest.find(b"/")
                authority, target = (rest, b"/") if slash < 0 else (rest[:slash], rest[slash:])
                raw_host = authority
                ex.target = target
                ex.parts = [p for p in ex.parts if p[:5].lower() != b"host:"]
                ex.parts.append(b"host: %b\r\n" % authority)
                ex.host_header = authority
            else:
                ex.local_status = 400
                return
        if raw_host is None:
            if not ex.http10:
                ex.local_status = 400  # HTTP/1.1 without Host (RFC 9112 §3.2)
                return
            host = ""
        else:
            cache = plane.hosts
            cached = cache.get(raw_host)
            if cached is None:
                cached = host_name(raw_host)
                if cached is None:
                    ex.local_status = 400
                    return
                if len(cache) >= _HOST_CACHE_MAX:
                    cache.clear()
                cache[raw_host] = cached
            host = cached
        ex.host = host
        ex.forwarded_port = _port_of(raw_host, self.scheme)
        query = target.find(b"?")
        raw_path = target if query < 0 else target[:query]
        try:
            text = raw_path.decode("ascii")
        except UnicodeDecodeError:
            text = raw_path.decode("utf-8", "surrogateescape")
        path = normalize_path(text)
        if path is None:
            ex.local_status = 400
            return
        ex.path = path
        transfer = ex.transfer
        if transfer is not None:
            if transfer.strip().lower() != b"chunked":
                ex.local_status = 501  # a transfer coding we do not know (RFC 9112 §6.1)
                return
            ex.chunked = True
        if ex.upgrade_value is not None:
            opts = ex.connection_options
            ex.upgrade = opts is not None and b"upgrade" in opts and not ex.http10

    @staticmethod
    def _drop_connection_options(ex: Exchange) -> None:
        # Headers named in Connection are hop-by-hop (RFC 9110 §7.6.1).
        named = (ex.connection_options or frozenset()) - {b"close", b"keep-alive", b"upgrade"}
        if named:
            ex.parts = [p for p in ex.parts if p.split(b":", 1)[0].lower() not in named]

    # --- called by exchanges and upstream connections -----------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None:
            transport.write(data)

    def waiting_for_upstream(self) -> None:
        """The request is out: from now on the endpoint must keep sending (or 504)."""
        self.upstream_deadline = self.plane.loop.time() + self.plane.settings.timeouts.upstream_read

    def upstream_activity(self) -> None:
        if self.upstream_deadline:
            self.upstream_deadline = (
                self.plane.loop.time() + self.plane.settings.timeouts.upstream_read
            )

    def exchange_done(self, ex: Exchange) -> None:
        if ex is not self.current:
            return
        self.current = None
        self.upstream_deadline = 0.0
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not ex.keep_alive or self.plane.closing:
            transport.close()  # after what was written (Connection: close was sent)
            return
        if self.upgrading:
            # The endpoint declined the upgrade; what the client sent since is not HTTP we
            # can parse, so this connection ends here.
            transport.close()
            return
        if self.queue:
            nxt = self.current = self.queue.popleft()
            if not self.queue:
                self._resume(_PIPELINE)
            nxt.start()
        elif self.building is None:
            self._idle()

    def _idle(self) -> None:
        self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.keepalive

    def start_tunnel(self, conn: UpstreamConnection) -> asyncio.Transport:
        """The endpoint switched protocols: from now on bytes pass through unparsed."""
        assert self.transport is not None
        self.tunnel = conn
        self.upgrading = False
        if self.early:
            conn.write(b"".join(self.early))
            self.early = []
        self.touch_tunnel()
        self.upstream_deadline = 0.0
        ex, self.current = self.current, None
        if ex is not None:
            ex.upstream = None
            ex.response_complete()  # logged as 101; the tunnel itself is not a request
            conn.exchange = ex  # keeps the client reachable for tunnel activity
        return self.transport

    def touch_tunnel(self) -> None:
        self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.tunnel_idle

    def pause_reading_for_upstream(self) -> None:
        self._pause(_UPSTREAM)

    def resume_reading_for_upstream(self) -> None:
        self._resume(_UPSTREAM)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- deadlines and shutdown ---------------------------------------------------------------

    def expire(self) -> None:
        """The client-side deadline passed."""
        self.deadline = 0.0
        if self.tunnel is not None:
            self.tunnel.close()
            self.abort()
        elif self.building is not None:
            self._bad_request(408, "request too slow")  # head or body (nginx: 408)
        elif self.current is None and self.transport is not None:
            self.transport.close()  # idle keep-alive, or connected and never sent anything

    def expire_upstream(self) -> None:
        """The endpoint sent nothing for ``Timeouts.upstream_read``."""
        self.upstream_deadline = 0.0
        if self.current is not None:
            self.current.timed_out()

    def shutdown(self) -> None:
        """Graceful stop: idle connections close now, busy ones after their response."""
        idle = self.current is None and self.building is None and self.tunnel is None
        if idle and self.transport is not None:
            self.transport.close()

    # --- helpers ------------------------------------------------------------------------------

    def _bad_request(self, status: int, why: str) -> None:
        ex = self.current or self.building
        if ex is not None and ex.response_started:
            self.abort()
            return
        if ex is not None and not ex.finished:
            ex.error = why
            if ex is self.current:
                ex.respond(status, close=True)
            else:
                ex.keep_alive = False
                ex.status = status
                ex.finished = True
                self.write(local_response(status, close=True))
                self.plane.record(ex)
        else:
            self.write(local_response(status, close=True))
        self.building = None
        if self.transport is not None:
            self.transport.close()

    def _pause(self, reason: int) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        was = self._paused
        self._paused &= ~reason
        transport = self.transport
        if was and not self._paused and transport is not None and not transport.is_closing():
            transport.resume_reading()


def _port_of(raw_host: bytes | None, scheme: bytes) -> bytes:
    """X-Forwarded-Port: the port the client addressed (from Host), else the scheme's default.

    ingress-nginx sends its own listening port; behind a Service that maps 80 -> 8080 that
    would tell the application 8080, which no client ever used.
    """
    if raw_host:
        head, sep, port = raw_host.rpartition(b":")
        bracketed = raw_host.startswith(b"[")  # an IPv6 literal: its colons are not the port's
        if sep and port.isdigit() and (not bracketed or head.endswith(b"]")):
            return port
    return b"443" if scheme == b"https" else b"80"
