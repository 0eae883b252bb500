"""The client side of the proxy: one asyncio Protocol per accepted connection.

Each request head is cut out of the stream at its empty line and handed to httptools (llhttp,
strict: a request with both ``Content-Length`` and ``Transfer-Encoding``, duplicate lengths,
bad chunk sizes or obsolete line folding is refused, so nothing can be smuggled past us); the
body that follows is fed to llhttp too, exactly as far as its framing says, so a pipelined next
request stays in the buffer until the exchange before it is done (RFC 9112 §9.3.2: responses
in request order). Deadlines (head, body, keep-alive, upstream read, tunnel idle) are one
timestamp per connection that the data plane's sweeper checks, not a timer each.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Final

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from kexpose.proxy.dataplane._chunked import ChunkedError, ChunkedScanner
from kexpose.proxy.dataplane._exchange import Exchange
from kexpose.proxy.dataplane._http2 import PREFACE, Http2Connection
from kexpose.proxy.dataplane._messages import local_response, remember_head
from kexpose.proxy.dataplane._peer import peer_of
from kexpose.proxy.dataplane._plans import plan_request

if TYPE_CHECKING:
    from kexpose.proxy.dataplane._roles import Finished, Plane
    from kexpose.proxy.dataplane._upstream import UpstreamConnection, UpstreamTransport

__all__ = ["ClientConnection"]

# Where the request stream is (``ClientConnection._state``).
_HEAD: Final = 0  # between requests or inside a head
_LENGTH: Final = 1  # in a body of known length
_CHUNKED: Final = 2  # in a chunked body
_UPGRADING: Final = 3  # asked to upgrade: what follows is not HTTP (held until the 101)
_TUNNEL: Final = 4

# Why reading from the client is paused (bits).
_PIPELINE: Final = 1
_UPSTREAM: Final = 2
_WRITING: Final = 4  # the client does not read its answers: start no new request until it does


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "_buf",
        "_complete",
        "_consuming",
        "_early",
        "_following",
        "_fresh",
        "_heads",
        "_idle_wait",
        "_left",
        "_paused",
        "_paused_upstream",
        "_receiving",
        "_scanner",
        "_state",
        "_write_paused",
        "current",
        "deadline",
        "forwarded",
        "gateway",
        "parser",
        "peer",
        "peer_bytes",
        "plane",
        "scheme",
        "sni",
        "transport",
        "tunnel",
        "upstream_deadline",
        "upstream_mark",
        "upstream_reads",
    )

    def __init__(self, plane: Plane, scheme: bytes, gateway: tuple[str, int] | None = None) -> None:
        self.plane = plane
        self.scheme = scheme
        self.gateway = gateway
        """``(gateway namespace/name, port)`` for a Gateway port's connection; None: Ingress."""
        self.transport: asyncio.Transport | None = None
        self.parser = HttpRequestParser(self)
        self.current: Exchange | None = None
        """The exchange whose response is due (one at a time)."""
        self.tunnel: UpstreamConnection | None = None
        self.forwarded = b""
        self.peer = ""
        self.deadline = 0.0
        """Reading the client: head, body or keep-alive idleness (0: none)."""
        self.upstream_deadline = 0.0
        """Waiting for the endpoint's next bytes (0: not waiting)."""
        self.upstream_reads = 0
        """Reads from the endpoint so far; the sweeper moves the deadline when it changed."""
        self.upstream_mark = 0
        self.peer_bytes = b""
        self.sni: str | None = None
        """The normalised SNI name of the TLS handshake (None: plain HTTP or no SNI)."""
        self._state = _HEAD
        self._buf = b""
        self._left = 0
        self._scanner: ChunkedScanner | None = None
        self._receiving: Exchange | None = None
        self._complete = False
        self._following = False
        self._consuming = False
        self._early: list[bytes] = []
        self._heads = plane.heads[scheme]
        self._paused = 0
        self._paused_upstream: UpstreamTransport | None = None
        self._write_paused = False
        """The transport's write buffer is above its high-water mark (``pause_writing``)."""
        self._idle_wait = False
        """``deadline`` is the keep-alive idle timeout, not yet a header timeout."""
        self._fresh = True
        """Nothing read yet: the bytes may be the HTTP/2 connection preface (prior knowledge)."""

    @property
    def closing(self) -> bool:
        return self.plane.closing

    # --- transport callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.scheme == b"https":
            sslobj = transport.get_extra_info("ssl_object")
            if sslobj is not None and sslobj.selected_alpn_protocol() == "h2":
                # HTTP/2 by ALPN (RFC 9113 §3.2): the connection is the HTTP/2 protocol's.
                self._become_http2(transport, b"")
                return
        self.peer, self.peer_bytes, self.forwarded, self.sni = peer_of(transport, self.scheme)
        self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.header
        self.plane.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.plane.closed(self)
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        for ex in (self.current, self._receiving):
            if ex is not None:
                ex.cancel()
        self.current = self._receiving = None

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _TUNNEL:
            assert self.tunnel is not None
            self.tunnel.write(data)
            self.touch_tunnel()
            return
        if state == _UPGRADING:
            self._early.append(data)  # for the tunnel, once the endpoint says 101
            return
        # The common case without the general loop: one whole head seen before, with no body
        # and nothing after it.
        if (
            state == _HEAD
            and self.current is None
            and not self._buf
            and not self._write_paused
            and data.find(b"\r\n\r\n") + 4 == len(data)
        ):
            req = self._heads.get(data)
            if req is not None and not (req.chunked or req.content_length or req.upgrade):
                self._fresh = False
                self._following = False
                ex = Exchange(self, perf_counter(), req)
                ex.keep_alive = req.keep_alive
                self.deadline = 0.0
                self.current = ex
                ex.start()
                return
        if self._buf:
            data, self._buf = self._buf + data, b""
        if self._fresh:
            # HTTP/2 with prior knowledge (RFC 9113 §3.3): the connection starts with the
            # preface instead of a request line.
            if data.startswith(PREFACE):
                assert self.transport is not None
                self.plane.closed(self)
                self._become_http2(self.transport, data)
                return
            if PREFACE.startswith(data):
                self._buf = data  # the preface so far, or the start of a PRI request line
                return
            self._fresh = False
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Consume client bytes; a malformed request is answered 400."""
        self._consuming = True
        try:
            self._consume(data)
        except (HttpParserError, HttpParserUpgrade, ChunkedError, ValueError) as exc:
            self._bad_request(400, f"malformed request: {exc}")
        finally:
            self._consuming = False

    def _become_http2(self, transport: asyncio.BaseTransport, data: bytes) -> None:
        self._fresh = False
        self.transport = None
        conn = Http2Connection(self.plane, self.scheme, self.gateway)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if data:
            conn.data_received(data)

    def eof_received(self) -> bool:
        # A half-closed client may still wait for its answer (RFC 9112 §9.6): keep the write
        # side open while an exchange is running, otherwise close.
        return self.current is not None

    def pause_writing(self) -> None:
        # The client reads slower than we answer. Stop reading the endpoint that feeds it, and
        # start no new request (``_consume`` stops at the next head): otherwise a client that
        # pipelines requests and never reads makes us queue answers without bound, whether
        # they come from an endpoint or from us (404, 400, redirects).
        self._write_paused = True
        conn = self.tunnel or (self.current.upstream if self.current is not None else None)
        if conn is not None and conn.transport is not None:
            conn.transport.pause_reading()
            self._paused_upstream = conn.transport

    def resume_writing(self) -> None:
        self._write_paused = False
        transport, self._paused_upstream = self._paused_upstream, None
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
        if self._paused & _WRITING:
            self._resume(_WRITING)
            if self.current is None and self._state == _HEAD:
                self._next()

    # --- httptools callbacks ------------------------------------------------------------------

    def on_message_complete(self) -> None:
        self._complete = True

    # --- the request stream -------------------------------------------------------------------

    def _consume(self, data: bytes) -> None:
        self._consume_stream(data)
        if (
            self._state == _HEAD
            and self.current is None
            and self._receiving is None
            and not self._buf
            and not self.deadline
        ):
            # All that was left were the empty lines a client may send between requests
            # (RFC 9112 §2.2): the connection is idle, and idleness has a deadline.
            self._idle()

    def _consume_stream(self, data: bytes) -> None:
        limits = self.plane.settings.limits
        while data:
            state = self._state
            if state == _HEAD:
                if self.current is not None:
                    # Pipelined: the next request waits until this response is out.
                    self._buf = data
                    self._pause(_PIPELINE)
                    return
                if self._write_paused:
                    # Answers are piling up unread: the next request waits until they drain.
                    self._buf = data
                    self._pause(_WRITING)
                    return
                if data[:1] in (b"\r", b"\n"):
                    data = data.lstrip(b"\r\n")  # empty lines before a request (RFC 9112 §2.2)
                    continue
                end = data.find(b"\r\n\r\n")
                if end < 0 or end > limits.max_head_bytes:
                    if len(data) > limits.max_head_bytes:
                        line = data.find(b"\r\n")
                        too_long_target = line < 0 or line > limits.max_head_bytes
                        self._bad_request(414 if too_long_target else 431, "request head too large")
                        return
                    if data.count(b"\n") != data.count(b"\r\n"):
                        # A bare LF: llhttp refuses it as a line end (RFC 9112 §2.2 lets a
                        # recipient accept it; a proxy that did would read heads differently
                        # from endpoints that do not). Say so now rather than at the timeout.
                        self._bad_request(400, "malformed request: bare LF in the head")
                        return
                    self._buf = data
                    if self._receiving is None and (not self.deadline or self._idle_wait):
                        # A head has started: from its first byte it has Timeouts.header to
                        # finish, however long the keep-alive idle timeout is.
                        self._idle_wait = False
                        self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.header
                    return
                cut = end + 4
                head, data = data[:cut], data[cut:]
                self._begin(head)
                if self._state == _UPGRADING:
                    if data:
                        self._early.append(data)
                    return
                transport = self.transport
                if transport is None or transport.is_closing():
                    # Answered and closing (a refused request, e.g. CONNECT with a body):
                    # nothing after it is read, let alone parsed (llhttp would still be in
                    # CONNECT's tunnel mode).
                    self._buf = b""
                    return
            elif state == _LENGTH:
                left = self._left
                piece = data if len(data) <= left else data[:left]
                data = data[len(piece) :]
                self._left = left - len(piece)
                if self._following:
                    self.parser.feed_data(piece)
                self._body(piece, done=not self._left)
            else:  # _CHUNKED
                scanner = self._scanner
                assert scanner is not None
                forward: list[bytes] = []
                n = scanner.scan(data, None, forward)
                piece, data = (data, b"") if n == len(data) else (data[:n], data[n:])
                self.parser.feed_data(piece)  # llhttp validates all of it, trailers included
                if scanner.done != self._complete:
                    raise ChunkedError("chunked framing: llhttp and the scanner disagree")
                self._body(
                    forward[0] if len(forward) == 1 else b"".join(forward), done=scanner.done
                )

    def _begin(self, head: bytes) -> None:
        """A complete, validated request head: make its exchange and start it."""
        plane = self.plane
        heads = self._heads
        req = heads.get(head)
        if req is None:
            # First sight of this head: llhttp validates it and follows the message.
            self._complete = False
            self._following = True
            try:  # noqa: SIM105 - contextlib.suppress costs an object per request here
                self.parser.feed_data(head)
            except HttpParserUpgrade:
                pass  # an upgrade request; llhttp has completed the message
            req = plan_request(head, scheme=self.scheme, hosts=self.plane.hosts[self.scheme])
            # Clients on keep-alive connections repeat their heads.
            remember_head(heads, head, req)
        else:
            # The same bytes llhttp accepted before: validating them again would say the same.
            # llhttp sits this message out unless its framing needs it (chunked).
            self._following = False
        self._idle_wait = False
        ex = Exchange(self, perf_counter(), req)
        ex.keep_alive = req.keep_alive
        if req.chunked:
            self._state = _CHUNKED
            self._scanner = ChunkedScanner()
            if not self._following:
                self._complete = False
                self._following = True
                self.parser.feed_data(head)
        elif req.content_length:
            self._state = _LENGTH
            self._left = req.content_length
        elif req.upgrade is not None and not req.status:
            self._state = _UPGRADING
        if ex.has_body:
            self._receiving = ex
            self.deadline = plane.loop.time() + plane.settings.timeouts.client_body
        else:
            self.deadline = 0.0
        self.current = ex
        ex.start()

    def _body(self, piece: bytes, *, done: bool) -> None:
        ex = self._receiving
        assert ex is not None
        ex.send_body(piece)
        if done:
            self._state = _HEAD
            self._receiving = None
            self.deadline = 0.0
            ex.end_body()
            if self.current is None:
                self._idle()
        else:
            self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.client_body

    # --- called by exchanges and upstream connections -----------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None:
            transport.write(data)

    def waiting_for_upstream(self) -> None:
        """The request is out: from now on the endpoint must keep sending (or 504)."""
        self.upstream_deadline = self.plane.loop.time() + self.plane.settings.timeouts.upstream_read

    def exchange_done(self, ex: Finished) -> None:
        if ex is not self.current:
            return
        self.current = None
        self.upstream_deadline = 0.0
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not ex.keep_alive or self.plane.closing or self._state == _UPGRADING:
            # Connection: close was sent; or the endpoint declined an upgrade and what the
            # client sent since is not HTTP we can parse.
            transport.close()
            return
        if self._state != _HEAD:
            return  # the body of this request is still arriving (and being dropped)
        if self._paused:  # (the common case, nothing paused, costs no call)
            self._resume(_PIPELINE)
        if self._buf:
            self._next()
        else:
            self._idle()

    def _next(self) -> None:
        """Between requests: start on what the client already sent, or wait idle."""
        if self._buf and not self._consuming:
            data, self._buf = self._buf, b""
            self._feed(data)
        elif not self._buf:
            self._idle()

    def _idle(self) -> None:
        self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.keepalive
        self._idle_wait = True

    def start_tunnel(self, conn: UpstreamConnection) -> asyncio.Transport:
        """The endpoint switched protocols: from now on bytes pass through unparsed."""
        assert self.transport is not None
        self.tunnel = conn
        self._state = _TUNNEL
        if self._early:
            conn.write(b"".join(self._early))
            self._early = []
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
        elif self._buf or self._receiving is not None:
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
        idle = self.current is None and self._receiving is None and self.tunnel is None
        if idle and self.transport is not None:
            self.transport.close()

    # --- helpers ------------------------------------------------------------------------------

    def _bad_request(self, status: int, why: str) -> None:
        ex = self.current or self._receiving
        self._state = _HEAD
        self._buf = b""
        if ex is not None and ex.response_started:
            self.abort()
            return
        if ex is not None and not ex.finished:
            ex.error = why
            ex.respond(status, close=True)
        else:
            self.write(local_response(status, close=True))
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
