"""One stream of an HTTP/2 client connection (``_http2``): an exchange's ``Downstream``.

The stream's request is written as the HTTP/1.1 head that says the same (``_translation``),
checked by llhttp and planned like any HTTP/1.1 head, and served by an ``Exchange`` on the same
route table and filters. The response comes back as the bytes an HTTP/1.1 client would get;
llhttp reads them again and they leave as HEADERS, DATA and trailing HEADERS, within the
client's flow-control windows: an endpoint whose stream has no window left is no longer read,
and a stream whose endpoint does not keep up gets no WINDOW_UPDATE (so its client stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Final, Protocol

from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import H2Error
from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser, HttpResponseParser

from kexpose.proxy.dataplane._exchange import Exchange
from kexpose.proxy.dataplane._grpc import grpc_timeout, is_grpc, trailers_only
from kexpose.proxy.dataplane._h2window import next_piece
from kexpose.proxy.dataplane._plans import plan_request
from kexpose.proxy.dataplane._translation import (
    BadRequest,
    request_head,
    response_fields,
    trailer_section,
)

if TYPE_CHECKING:
    from kexpose.proxy.dataplane._roles import Finished, Plane
    from kexpose.proxy.dataplane._upstream import UpstreamConnection, UpstreamTransport

__all__ = ["Http2Stream", "StreamHost"]

log = logging.getLogger(__name__)

_LAST_CHUNK: Final = b"0\r\n\r\n"
_HEAD_CACHE_MAX: Final = 1024


class StreamHost(Protocol):
    """What a stream needs of its connection (``_http2.Http2Connection``)."""

    h2: H2Connection
    plane: Plane
    scheme: bytes
    gateway: tuple[str, int] | None
    sni: str | None
    forwarded: bytes
    peer: str
    peer_bytes: bytes

    def flush(self) -> None: ...
    def flush_soon(self) -> None: ...
    def forget(self, stream: Http2Stream) -> None: ...


class Http2Stream:
    """One request and its response on an HTTP/2 connection: an exchange's ``Downstream``.

    The exchange writes its response as HTTP/1.1 bytes (``write``); llhttp reads them back
    into a status, fields, body and trailers for the stream (its callbacks are the ``on_*``
    methods below)."""

    __slots__ = (
        "_chunked",
        "_end",
        "_ended",
        "_fields",
        "_grpc_timer",
        "_head",
        "_head_only",
        "_out",
        "_out_bytes",
        "_parser",
        "_paused",
        "_paused_upstream",
        "_trailers",
        "_unacked",
        "body_deadline",
        "closed",
        "conn",
        "exchange",
        "forwarded",
        "gateway",
        "peer",
        "peer_bytes",
        "plane",
        "request_ended",
        "scheme",
        "sni",
        "stream_id",
        "upstream_deadline",
        "upstream_mark",
        "upstream_reads",
    )

    def __init__(self, conn: StreamHost, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.plane: Plane = conn.plane
        self.scheme = conn.scheme
        self.gateway = conn.gateway
        self.sni = conn.sni
        self.forwarded = conn.forwarded
        self.peer = conn.peer
        self.peer_bytes = conn.peer_bytes
        self.upstream_deadline = 0.0
        self.upstream_reads = 0
        self.upstream_mark = 0
        self.body_deadline = 0.0
        """The request body's next DATA is due (``Timeouts.client_body``; 0: not waiting)."""
        self.exchange: Exchange | None = None
        self.request_ended = False
        self.closed = False
        """Reset, or the response fully sent and the request fully read."""
        self._chunked = False
        """The request body goes to the endpoint chunked (the client gave no length)."""
        self._trailers: list[tuple[bytes, bytes]] = []
        self._head_only = False
        self._grpc_timer: asyncio.TimerHandle | None = None
        self._head: list[tuple[bytes, bytes]] | None = None
        """The response's HEADERS, until the first _drain sends them."""
        self._parser: HttpResponseParser | None = None
        self._fields: list[tuple[bytes, bytes]] = []
        self._out: list[bytes] = []
        """Response body bytes waiting for flow-control window."""
        self._out_bytes = 0
        self._end: list[tuple[bytes, bytes]] | None = None
        """Set once the response is complete: its trailers (possibly none)."""
        self._ended = False
        """END_STREAM has been sent."""
        self._paused = False
        """The exchange cannot take more body now: WINDOW_UPDATEs are held back."""
        self._unacked = 0
        self._paused_upstream: UpstreamTransport | None = None

    # --- the request --------------------------------------------------------------------------

    def begin(self, headers: list[tuple[bytes, bytes]], *, ended: bool) -> None:
        conn = self.conn
        plane = self.plane
        self.request_ended = ended
        if not ended:
            self.body_deadline = plane.loop.time() + plane.settings.timeouts.client_body
        try:
            head, self._chunked = request_head(headers, body=not ended)
        except BadRequest as exc:
            self._refuse(str(exc))
            return
        heads = plane.heads[self.scheme]
        req = heads.get(head)
        if req is None:
            # The same check an HTTP/1.1 head gets: what llhttp refuses is not forwarded.
            try:
                HttpRequestParser(conn).feed_data(head)
            except (HttpParserError, HttpParserUpgrade) as exc:
                self._refuse(f"malformed request: {exc}")
                return
            req = plan_request(head, scheme=self.scheme, hosts=plane.hosts[self.scheme])
            if len(heads) >= _HEAD_CACHE_MAX:
                heads.clear()
            heads[head] = req
        self._head_only = req.method == b"HEAD"
        ex = self.exchange = Exchange(self, perf_counter(), req)
        if is_grpc(req.fields):
            self._grpc_deadline(headers)
        ex.start()

    def _grpc_deadline(self, headers: list[tuple[bytes, bytes]]) -> None:
        """``grpc-timeout`` (gRPC over HTTP/2, "Timeout"): the backend gets it too, but the
        call ends here when it passes whether or not the backend or the client watch it."""
        for name, value in headers:
            if name == b"grpc-timeout":
                seconds = grpc_timeout(value)
                if seconds is not None:
                    loop = self.plane.loop
                    self._grpc_timer = loop.call_later(seconds, self._deadline_exceeded)
                return

    def _deadline_exceeded(self) -> None:
        """DEADLINE_EXCEEDED (4) in the trailers; the exchange is cancelled (its endpoint
        connection reset or its h2c stream reset with CANCEL, which the backend sees)."""
        self._grpc_timer = None
        ex = self.exchange
        if ex is None or ex.finished or self.closed or self._ended:
            return
        ex.status = 504
        ex.error = "grpc-timeout passed"
        started = ex.response_started
        ex.cancel()
        h2 = self.conn.h2
        status = [(b"grpc-status", b"4"), (b"grpc-message", b"grpc-timeout passed")]
        self._out = []
        self._out_bytes = 0
        self._ended = True
        try:
            if started and self._head is None:
                h2.send_headers(self.stream_id, status, end_stream=True)
            else:
                head = [(b":status", b"200"), (b"content-type", b"application/grpc"), *status]
                h2.send_headers(self.stream_id, head, end_stream=True)
        except H2Error:
            self.abort()
            return
        self._head = None
        self.exchange = None
        self._settle()
        self.conn.flush_soon()

    def _refuse(self, why: str) -> None:
        log.debug("stream %d refused: %s", self.stream_id, why)
        h2 = self.conn.h2
        try:
            h2.send_headers(
                self.stream_id, [(b":status", b"400"), (b"content-length", b"0")], end_stream=True
            )
        except H2Error:
            return
        self._ended = True
        self._end = []
        self._settle()

    def data(self, data: bytes, flow: int) -> None:
        timeouts = self.plane.settings.timeouts
        self.body_deadline = self.plane.loop.time() + timeouts.client_body
        ex = self.exchange
        if data and ex is not None and not ex.finished:
            ex.send_body(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)
        if self._paused:
            self._unacked += flow
        elif flow:
            self.conn.h2.acknowledge_received_data(flow, self.stream_id)

    def trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._trailers = headers

    def end(self) -> None:
        self.request_ended = True
        self.body_deadline = 0.0
        ex = self.exchange
        if ex is not None and not ex.finished:
            if self._chunked:
                ex.send_body(trailer_section(self._trailers) if self._trailers else _LAST_CHUNK)
            ex.end_body()
        self._settle()

    def reset(self) -> None:
        """The client cancelled the stream (RST_STREAM)."""
        self.closed = True
        ex, self.exchange = self.exchange, None
        if ex is not None:
            ex.cancel()
        self._release()
        self.conn.forget(self)

    # --- Downstream: called by the exchange and its upstream connection -----------------------

    @property
    def closing(self) -> bool:
        return self.plane.closing

    @property
    def transport(self) -> Http2Stream:
        return self  # the upstream side's fast path writes here: the stream re-frames it

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        parser = self._parser
        if parser is None:
            parser = self._parser = HttpResponseParser(self)
        try:
            # The callbacks below only collect; one _drain then sends what this read carried
            # in as few frames as it can (HEADERS, DATA with END_STREAM for a whole response).
            parser.feed_data(data)
            self._drain()
        except (HttpParserError, H2Error) as exc:  # our own bytes: never expected
            log.warning("stream %d: cannot re-frame the response: %s", self.stream_id, exc)
            self.abort()
            return
        if self._out_bytes > self.plane.settings.limits.high_water:
            # No window for what the endpoint sends: stop reading it until the client opens
            # the window again (``_drain``).
            self.pause_upstream()
        self.conn.flush_soon()

    def waiting_for_upstream(self) -> None:
        self.upstream_deadline = self.plane.loop.time() + self.plane.settings.timeouts.upstream_read

    def exchange_done(self, ex: Finished) -> None:
        if ex is not self.exchange:
            return
        self.upstream_deadline = 0.0
        # The endpoint connection goes back to the pool (or away) now, whatever is still
        # queued here: one left paused would stall the next exchange that borrows it.
        self._release_upstream()
        if self._end is None and not self.closed:
            self.abort()  # the exchange ended without a complete response
            return
        self._settle()

    def pause_reading_for_upstream(self) -> None:
        self._paused = True

    def resume_reading_for_upstream(self) -> None:
        self._paused = False
        if self._unacked and not self.closed:
            unacked, self._unacked = self._unacked, 0
            try:
                self.conn.h2.acknowledge_received_data(unacked, self.stream_id)
            except H2Error:
                return
            self.conn.flush()

    def abort(self) -> None:
        """Cut the response short: RST_STREAM INTERNAL_ERROR (RFC 9113 §8.1: the HTTP/2 form
        of closing an HTTP/1.1 connection mid-response)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(H2Error):
            self.conn.h2.reset_stream(self.stream_id, ErrorCodes.INTERNAL_ERROR)
        self._release()
        self.conn.flush()
        self.conn.forget(self)

    def touch_tunnel(self) -> None:
        pass  # no tunnels on HTTP/2 streams

    def start_tunnel(self, conn: UpstreamConnection) -> asyncio.Transport:
        # Unreachable: h2 refuses Upgrade and Connection fields (RFC 9113 §8.2.2), so no
        # request on a stream asks to switch protocols and no 101 is accepted for one.
        raise RuntimeError("an HTTP/2 stream cannot switch protocols")

    # --- llhttp callbacks: the response the exchange wrote ------------------------------------

    def on_message_begin(self) -> None:
        self._fields = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        fields, self._fields = self._fields, []
        if status < 200:
            return  # interim responses are not forwarded on streams
        self._head = [(b":status", b"%d" % status), *response_fields(fields)]
        if self._head_only or status in (204, 304):
            self._end = []  # no body, whatever the fields say (RFC 9110 §6.4.1)

    def on_body(self, body: bytes) -> None:
        if self._end is None:
            self._out.append(body)
            self._out_bytes += len(body)

    def on_message_complete(self) -> None:
        if self._end is None:
            self._end = response_fields(self._fields)
            self._fields = []

    # --- sending ------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Send the head, then what the windows allow; END_STREAM (with trailers) once all is
        out, on the last DATA frame when there are no trailers."""
        if self.closed or self._ended:
            return
        h2 = self.conn.h2
        out = self._out
        sid = self.stream_id
        end = self._end
        head = self._head
        if head is not None:
            self._head = None
            if end is not None and not out and (not end or trailers_only(head, end)):
                # A whole response without a body: one HEADERS frame, gRPC's trailers too.
                h2.send_headers(sid, head + end, end_stream=True)
                self._ended = True
                self._settle()
                return
            h2.send_headers(sid, head)
        while out:
            piece = next_piece(h2, sid, out)
            if piece is None:
                break
            self._out_bytes -= len(piece)
            if not out and end == []:
                h2.send_data(sid, piece, end_stream=True)
                self._ended = True
            else:
                h2.send_data(sid, piece)
        if self._paused_upstream is not None and self._out_bytes <= (
            self.plane.settings.limits.high_water
        ):
            self._release()
        if not out and end is not None and not self._ended:
            self._ended = True
            if end:
                h2.send_headers(sid, end, end_stream=True)
            else:
                h2.end_stream(sid)
        if self._ended:
            self._settle()

    def window_opened(self) -> None:
        if self._out or (self._end is not None and not self._ended) or self._head is not None:
            try:
                self._drain()
            except H2Error:
                self.abort()

    def _settle(self) -> None:
        """Forget the stream once both directions are done. A response complete before its
        request body asks the client to stop sending (RST_STREAM NO_ERROR, RFC 9113 §8.1)."""
        if self.closed or not self._ended:
            return
        ex = self.exchange
        if ex is not None and not ex.finished:
            return
        if not self.request_ended:
            self.closed = True
            with contextlib.suppress(H2Error):
                self.conn.h2.reset_stream(self.stream_id, ErrorCodes.NO_ERROR)
        self.closed = True
        self._release()
        self.conn.forget(self)

    def _release(self) -> None:
        """Let go of what the stream holds outside itself: a paused endpoint, a timer."""
        self._release_upstream()
        if self._grpc_timer is not None:
            self._grpc_timer.cancel()
            self._grpc_timer = None

    def _release_upstream(self) -> None:
        transport, self._paused_upstream = self._paused_upstream, None
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def pause_upstream(self) -> None:
        """The client connection's write buffer is full: stop reading this stream's endpoint
        (only while the exchange runs: a finished one's connection is another's by now)."""
        ex = self.exchange
        if ex is None or ex.finished:
            return
        up = ex.upstream if ex is not None else None
        if up is not None and up.transport is not None and self._paused_upstream is None:
            up.transport.pause_reading()
            self._paused_upstream = up.transport

    def expire_upstream(self, now: float) -> None:
        if self.body_deadline and self.body_deadline <= now and not self.request_ended:
            # A body that stopped coming (slowloris on a stream): 408 as on HTTP/1.1, which
            # also resets the stream (its request never ended).
            self.body_deadline = 0.0
            ex = self.exchange
            if ex is not None and not ex.finished:
                ex.error = "request body too slow"
                if ex.response_started:
                    self.abort()
                else:
                    ex.respond(408)
            return
        if not self.upstream_deadline:
            return
        if self.upstream_reads != self.upstream_mark:
            self.upstream_mark = self.upstream_reads
            self.upstream_deadline = now + self.plane.settings.timeouts.upstream_read
        elif self.upstream_deadline <= now:
            self.upstream_deadline = 0.0
            if self.exchange is not None:
                self.exchange.timed_out()
