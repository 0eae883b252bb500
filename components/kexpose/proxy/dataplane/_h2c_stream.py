"""One exchange's stream on an h2c connection to an endpoint (``_upstream_h2c``).

The exchange writes its request as HTTP/1.1 bytes, as to any endpoint; llhttp reads them back
and they leave as HEADERS (RFC 9113 §8.3.1: ``:authority`` from Host; §8.2.2: no
connection-specific fields; ``te: trailers``, which gRPC servers require), DATA and trailing
HEADERS. The response goes to the client as an HTTP/1.1 endpoint's would: the head, a chunked
body and the trailers in its last chunk; a gRPC "trailers-only" response's status fields move
to the trailers, so that an HTTP/2 client gets them in trailing HEADERS as gRPC expects. An
exchange that gives up (the client cancelled, a timeout) resets the stream with CANCEL, which
is how the endpoint learns it.
"""

from __future__ import annotations

import contextlib
from typing import Final, Protocol

from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import H2Error
from httptools import HttpParserError, HttpRequestParser

from kexpose.proxy.dataplane._h2window import next_piece
from kexpose.proxy.dataplane._messages import modify_fields, status_line
from kexpose.proxy.dataplane._upstream import Requester

__all__ = ["H2cStream", "StreamOwner"]

#: Request fields that belong to one HTTP/1.1 connection (RFC 9113 §8.2.2), or that HTTP/2
#: says otherwise (Host is :authority).
_NOT_FORWARDED: Final = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te")
)
#: Response fields that become trailers when a HEADERS frame ends the stream (gRPC's
#: "Trailers-Only" response: status, message and details are trailers in HTTP/1.1 terms).
_GRPC_TRAILERS: Final = frozenset((b"grpc-status", b"grpc-message", b"grpc-status-details-bin"))


class StreamOwner(Protocol):
    """What a stream needs of its connection (``_upstream_h2c.H2cConnection``)."""

    h2: H2Connection

    @property
    def high_water(self) -> int: ...

    def opened(self, stream: H2cStream) -> None: ...
    def forget(self, stream: H2cStream) -> None: ...
    def flush_soon(self) -> None: ...


class H2cStream:
    """One exchange's stream on an h2c connection; its own ``transport`` for the exchange."""

    __slots__ = (
        "_end",
        "_fields",
        "_head",
        "_in_trailers",
        "_out",
        "_out_bytes",
        "_parser",
        "_paused",
        "_paused_client",
        "_trailers",
        "_unacked",
        "_url",
        "closed",
        "conn",
        "exchange",
        "requests",
        "stream_id",
    )

    def __init__(self, conn: StreamOwner) -> None:
        self.conn = conn
        self.stream_id = 0
        """0 until HEADERS go out (ids are taken in the order streams open, RFC 9113 §5.1.1)."""
        self.exchange: Requester | None = None
        self.requests = 1
        self.closed = False
        self._parser = HttpRequestParser(self)
        self._url = b""
        self._fields: list[tuple[bytes, bytes]] = []
        self._in_trailers = False
        self._head: list[tuple[bytes, bytes]] | None = None
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._end: list[tuple[bytes, bytes]] | None = None
        self._paused = False
        self._paused_client = False
        self._unacked = 0
        self._trailers: list[tuple[bytes, bytes]] = []

    # --- Upstream: called by the exchange -----------------------------------------------------

    @property
    def transport(self) -> H2cStream:
        return self

    def attach(self, ex: Requester) -> None:
        self.exchange = ex

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._parser.feed_data(data)
            self._drain()
        except (HttpParserError, H2Error) as exc:  # our own bytes, or the endpoint's limits
            self._failed(f"cannot send the request on h2c: {exc}")
            return
        self.conn.flush_soon()

    def abort(self) -> None:
        """The exchange gave up (the client cancelled, a timeout): RST_STREAM CANCEL."""
        if self.closed:
            return
        self.closed = True
        self.exchange = None
        if self.stream_id:
            with contextlib.suppress(H2Error):
                self.conn.h2.reset_stream(self.stream_id, ErrorCodes.CANCEL)
            self.conn.flush_soon()
        self.conn.forget(self)

    def release(self) -> None:
        self.abort()  # nothing was sent on it: the stream id was never taken

    def pause_reading(self) -> None:
        self._paused = True  # WINDOW_UPDATEs held back: the endpoint stops sending

    def resume_reading(self) -> None:
        self._paused = False
        if self._unacked and not self.closed:
            unacked, self._unacked = self._unacked, 0
            with contextlib.suppress(H2Error):
                self.conn.h2.acknowledge_received_data(unacked, self.stream_id)
            self.conn.flush_soon()

    def is_closing(self) -> bool:
        return self.closed

    # --- llhttp callbacks: the request the exchange wrote -------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if self._in_trailers:
            self._trailers.append((name, value))
        elif name not in _NOT_FORWARDED:
            self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_trailers = True
        authority = b""
        fields = []
        for name, value in self._fields:
            if name == b"host":
                authority = value
            else:
                fields.append((name, value))
        self._head = [
            (b":method", self._parser.get_method()),
            (b":scheme", b"http"),
            (b":authority", authority),
            (b":path", self._url),
            *fields,
            (b"te", b"trailers"),
        ]
        self._fields = []

    def on_body(self, body: bytes) -> None:
        self._out.append(body)
        self._out_bytes += len(body)

    def on_message_complete(self) -> None:
        self._end = self._trailers

    def _drain(self) -> None:
        h2 = self.conn.h2
        head = self._head
        end = self._end
        out = self._out
        if head is not None:
            self._head = None
            self.stream_id = sid = h2.get_next_available_stream_id()
            self.conn.opened(self)
            h2.send_headers(sid, head, end_stream=end == [] and not out)
            if end == [] and not out:
                self._end = None
                return
        sid = self.stream_id
        if not sid:
            return
        while out:
            piece = next_piece(h2, sid, out)
            if piece is None:
                break
            self._out_bytes -= len(piece)
            last = not out and end == []
            h2.send_data(sid, piece, end_stream=last)
            if last:
                self._end = end = None
        if not out and end is not None:
            self._end = None
            if end:
                h2.send_headers(sid, end, end_stream=True)
            else:
                h2.end_stream(sid)
        ex = self.exchange
        if ex is None:
            return
        high = self.conn.high_water
        if self._out_bytes > high and not self._paused_client:
            self._paused_client = True
            ex.client.pause_reading_for_upstream()
        elif self._paused_client and self._out_bytes <= high:
            self._paused_client = False
            ex.client.resume_reading_for_upstream()

    def window_opened(self) -> None:
        if self.closed or not (self._out or self._end is not None):
            return
        try:
            self._drain()
        except H2Error as exc:
            self._failed(f"cannot send the request on h2c: {exc}")

    # --- the response, from the connection's events -------------------------------------------

    def response(self, headers: list[tuple[bytes, bytes]], *, ended: bool) -> None:
        ex = self.exchange
        if ex is None:
            return
        status = 0
        fields: list[bytes] = []
        trailers: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            if name == b":status":
                status = int(value)
            elif name[:1] == b":" or name in _NOT_FORWARDED or name == b"content-length":
                continue
            elif ended and name in _GRPC_TRAILERS:
                trailers.append((name, value))
            else:
                fields.append(b"\r\n%b: %b" % (name, value))
        if status >= 200 and ex.retries_left and ex.retry_for(status):
            self.abort()
            ex.upstream = None
            ex.retry()
            return
        ex.response_started = True
        ex.status = status
        block = b"".join(fields)
        if ex.response_modifiers:
            block = modify_fields(block, ex.response_modifiers)
        req = ex.req
        bodiless = req.method == b"HEAD" or status in (204, 304)
        if bodiless:
            extra = b""
        elif req.http10:
            extra = b"\r\nconnection: close"  # the body ends when the connection does
            ex.keep_alive = False
        else:
            extra = b"\r\ntransfer-encoding: chunked"
        if (not ex.keep_alive or ex.client.closing) and not req.http10:
            extra += b"\r\nconnection: close"
        self._trailers = trailers
        ex.client.write(status_line(status)[:-2] + block + extra + b"\r\n\r\n")
        ex.client.upstream_reads += 1
        if ended:
            self.ended()

    def data(self, data: bytes, flow: int) -> None:
        ex = self.exchange
        if ex is not None and data and ex.status not in (204, 304) and ex.req.method != b"HEAD":
            ex.response_bytes += len(data)
            ex.client.upstream_reads += 1
            ex.client.write(data if ex.req.http10 else b"%x\r\n%b\r\n" % (len(data), data))
        if self._paused:
            self._unacked += flow
        elif flow:
            with contextlib.suppress(H2Error):
                self.conn.h2.acknowledge_received_data(flow, self.stream_id)

    def trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._trailers += [(n, v) for n, v in headers if n[:1] != b":"]

    def ended(self) -> None:
        ex = self.exchange
        self.closed = True
        self.exchange = None
        self.conn.forget(self)
        if ex is None:
            return
        req = ex.req
        if not (req.method == b"HEAD" or ex.status in (204, 304) or req.http10):
            lines = b"".join(b"%b: %b\r\n" % (n, v) for n, v in self._trailers)
            ex.client.write(b"0\r\n" + lines + b"\r\n")
        ex.upstream = None
        ex.response_complete()

    def reset(self, code: int) -> None:
        try:
            name = ErrorCodes(code).name
        except ValueError:
            name = str(code)
        self._failed(f"stream reset by the endpoint ({name})")

    def lost(self, why: str) -> None:
        ex = self.exchange
        self.closed = True
        self.exchange = None
        if ex is not None:
            ex.upstream_lost(self, why)

    def _failed(self, why: str) -> None:
        ex = self.exchange
        self.abort()
        if ex is not None:
            ex.upstream_failed(self, why)
