"""HTTP/2 client connections (RFC 9113): the ``h2`` state machine under an asyncio transport.

A connection becomes HTTP/2 by ALPN on the TLS listeners or by the client's connection preface
on plain ones (prior knowledge, RFC 9113 §3.3); ``_downstream`` hands it over. Each stream's
request is written as the HTTP/1.1 head that says the same (``_translation``), checked by llhttp
and planned like any HTTP/1.1 head, and served by an ``Exchange`` on the same route table and
filters, with the stream as its ``Downstream``. The response comes back as the bytes an
HTTP/1.1 client would get; llhttp reads them again and they leave as HEADERS, DATA and
trailing HEADERS, within the client's flow-control windows. Bodies stream both ways: a stream
whose endpoint does not keep up stops getting WINDOW_UPDATEs (so its client stops sending), and
an endpoint whose stream has no window left is no longer read.

Limits against the known attacks (RFC 9113 §10.5) close the connection with GOAWAY: h2's own
(CONTINUATION frames per header block, a header list past SETTINGS_MAX_HEADER_LIST_SIZE
whatever the HPACK compression, streams past SETTINGS_MAX_CONCURRENT_STREAMS), and ours: token
buckets for streams the client cancels (rapid reset, CVE-2023-44487) and for PING and SETTINGS
frames, each answered ENHANCE_YOUR_CALM when spent (``settings.Http2Limits``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Final

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    PingReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError
from h2.settings import SettingCodes, Settings
from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser, HttpResponseParser
from hyperframe.frame import GoAwayFrame

from kexpose.hosts import normalize_host
from kexpose.proxy.dataplane._exchange import Exchange
from kexpose.proxy.dataplane._plans import plan_request
from kexpose.proxy.dataplane._tls import sni_of
from kexpose.proxy.dataplane._translation import (
    BadRequest,
    request_head,
    response_fields,
    trailer_section,
)

if TYPE_CHECKING:
    from kexpose.proxy.dataplane._roles import Finished, Plane
    from kexpose.proxy.dataplane._upstream import UpstreamConnection, UpstreamTransport

__all__ = ["PREFACE", "Http2Connection"]

log = logging.getLogger(__name__)

#: The client connection preface (RFC 9113 §3.4).
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#: The connection-level receive window we open at the start: enough for every stream's own
#: window (64 KiB each) to be in flight at once, so one stream whose endpoint is slow (its
#: WINDOW_UPDATEs held back) never stalls the others.
_CONNECTION_WINDOW: Final = 2**23
_LAST_CHUNK: Final = b"0\r\n\r\n"
_HEAD_CACHE_MAX: Final = 1024


class _Budget:
    """A token bucket: ``burst`` tokens, refilled at ``rate`` per second."""

    __slots__ = ("_at", "_burst", "_left", "_rate")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self._burst = float(burst)
        self._rate = rate
        self._left = float(burst)
        self._at = now

    def spend(self, now: float) -> bool:
        left = min(self._burst, self._left + (now - self._at) * self._rate)
        self._at = now
        if left < 1.0:
            self._left = left
            return False
        self._left = left - 1.0
        return True


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

    def __init__(self, conn: Http2Connection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.plane: Plane = conn.plane
        self.scheme = conn.scheme
        self.gateway = conn.gateway
        self.sni = conn.sni
        self.forwarded = conn.forwarded
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
        ex.start()

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
        self._release_upstream()
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
        self._release_upstream()
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
            if end == [] and not out:
                h2.send_headers(sid, head, end_stream=True)
                self._ended = True
                self._settle()
                return
            h2.send_headers(sid, head)
        while out:
            window = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size)
            if window <= 0:
                break
            piece = out[0]
            if len(piece) > window:
                out[0] = piece[window:]
                piece = piece[:window]
            else:
                out.pop(0)
            self._out_bytes -= len(piece)
            if not out and end == []:
                h2.send_data(sid, piece, end_stream=True)
                self._ended = True
            else:
                h2.send_data(sid, piece)
        if self._paused_upstream is not None and self._out_bytes <= (
            self.plane.settings.limits.high_water
        ):
            self._release_upstream()
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
        self._release_upstream()
        self.conn.forget(self)

    def _release_upstream(self) -> None:
        transport, self._paused_upstream = self._paused_upstream, None
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def pause_upstream(self) -> None:
        """The client connection's write buffer is full: stop reading this stream's endpoint."""
        ex = self.exchange
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


class Http2Connection(asyncio.Protocol):
    """One HTTP/2 client connection: frames in and out through ``h2``, streams by id."""

    __slots__ = (
        "_controls",
        "_flush_due",
        "_going_away",
        "_resets",
        "_write_paused",
        "deadline",
        "forwarded",
        "gateway",
        "h2",
        "peer",
        "peer_bytes",
        "plane",
        "scheme",
        "sni",
        "streams",
        "transport",
        "upstream_deadline",
        "upstream_mark",
        "upstream_reads",
    )

    def __init__(self, plane: Plane, scheme: bytes, gateway: tuple[str, int] | None = None) -> None:
        self.plane = plane
        self.scheme = scheme
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Http2Stream] = {}
        self.forwarded = b""
        self.peer = ""
        self.peer_bytes = b""
        self.sni: str | None = None
        self.deadline = 0.0
        # The sweeper's per-connection upstream deadline does not fit a connection of many
        # streams: kept due (1.0) with no reads counted, so that each sweep calls
        # ``expire_upstream``, which checks every stream's own deadline.
        self.upstream_deadline = 1.0
        self.upstream_reads = 0
        self.upstream_mark = 0
        limits = plane.settings.limits
        h2limits = plane.settings.http2
        config = H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=False,  # only joins cookies, which _translation does
            validate_outbound_headers=False,  # response_fields has dropped what is not allowed
            normalize_outbound_headers=False,  # names are lower case already
            split_outbound_cookies=False,
        )
        self.h2 = H2Connection(config=config)
        self.h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: h2limits.max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_head_bytes,
            },
        )
        # HPACK bombs: a small header block that decodes to a huge list is refused by size
        # after decoding each field, whatever the compression (RFC 9113 §10.5.1).
        self.h2.decoder.max_header_list_size = limits.max_head_bytes
        now = plane.loop.time()
        self._resets = _Budget(h2limits.resets_burst, h2limits.resets_per_second, now)
        self._controls = _Budget(h2limits.control_burst, h2limits.control_per_second, now)
        self._going_away = False
        self._write_paused = False
        self._flush_due = False

    @property
    def closing(self) -> bool:
        return self.plane.closing

    # --- transport callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.peer_bytes = ip = self.peer.encode()
        proto = self.scheme
        self.forwarded = (
            b"\r\nx-forwarded-for: %b\r\nx-real-ip: %b\r\nx-forwarded-proto: %b"
            b"\r\nx-forwarded-scheme: %b" % (ip, ip, proto, proto)
        )
        if proto == b"https":
            sni = sni_of(transport.get_extra_info("ssl_object"))
            self.sni = normalize_host(sni) if sni else None
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_CONNECTION_WINDOW - 65_535)
        self.flush()
        self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.header
        self.plane.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.plane.closed(self)
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.closed = True
            ex, stream.exchange = stream.exchange, None
            if ex is not None:
                ex.cancel()
            stream._release_upstream()

    def data_received(self, data: bytes) -> None:
        h2 = self.h2
        try:
            events = h2.receive_data(data)
        except ProtocolError as exc:
            # h2 has queued a GOAWAY with the error's code (PROTOCOL_ERROR, FRAME_SIZE_ERROR,
            # ENHANCE_YOUR_CALM for a header list past the limit, ...).
            log.debug("HTTP/2 connection from %s closed: %s", self.peer, exc)
            self._close()
            return
        streams = self.streams
        for event in events:
            if isinstance(event, DataReceived):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.data(event.data or b"", event.flow_controlled_length or 0)
                elif event.flow_controlled_length:
                    h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, RequestReceived):
                self._request(event)
            elif isinstance(event, StreamEnded):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.end()
            elif isinstance(event, WindowUpdated):
                self._window_opened(event.stream_id)
            elif isinstance(event, StreamReset):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.reset()
                if not self._resets.spend(self.plane.loop.time()):
                    self._calm("too many streams cancelled (rapid reset)")
                    return
            elif isinstance(event, TrailersReceived):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.trailers(list(event.headers or ()))
            elif isinstance(event, (PingReceived, RemoteSettingsChanged)):
                if not self._controls.spend(self.plane.loop.time()):
                    self._calm("too many PING or SETTINGS frames")
                    return
                if isinstance(event, RemoteSettingsChanged):
                    # A new SETTINGS_INITIAL_WINDOW_SIZE may open every stream's window.
                    self._window_opened(0)
            elif isinstance(event, ConnectionTerminated):
                self._close()
                return
        self.flush()

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        # The client does not read: stop reading it (its frames all ask for answers) and the
        # endpoints that feed it, until the buffer drains.
        self._write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()
        for stream in self.streams.values():
            stream.pause_upstream()

    def resume_writing(self) -> None:
        self._write_paused = False
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
        for stream in list(self.streams.values()):
            if stream._out_bytes <= self.plane.settings.limits.high_water:
                stream._release_upstream()

    # --- streams ------------------------------------------------------------------------------

    def _request(self, event: RequestReceived) -> None:
        sid = event.stream_id
        assert sid is not None
        if self._going_away:
            # After our GOAWAY: not processed, the client may retry it elsewhere (§6.8).
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        stream = self.streams[sid] = Http2Stream(self, sid)
        self.deadline = 0.0
        stream.begin(list(event.headers or ()), ended=event.stream_ended is not None)

    def _window_opened(self, stream_id: int | None) -> None:
        if stream_id:
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.window_opened()
            return
        for stream in list(self.streams.values()):
            stream.window_opened()

    def forget(self, stream: Http2Stream) -> None:
        if self.streams.pop(stream.stream_id, None) is None or self.streams:
            return
        if self._going_away:
            self._goodbye()
        else:
            self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.keepalive

    def flush_soon(self) -> None:
        """Flush once this turn of the loop is over: the responses of many streams that
        arrive together leave in one write (one TLS record, one system call)."""
        if not self._flush_due:
            self._flush_due = True
            self.plane.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_due = False
        out = self.h2.data_to_send()
        transport = self.transport
        if out and transport is not None:
            transport.write(out)

    # --- endings ------------------------------------------------------------------------------

    def _calm(self, why: str) -> None:
        """A budget is spent: GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §7), then close."""
        log.warning("HTTP/2 connection from %s closed: %s", self.peer, why)
        with contextlib.suppress(H2Error):
            self.h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
        self._close()

    def _close(self) -> None:
        self.flush()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _goodbye(self) -> None:
        with contextlib.suppress(H2Error):
            self.h2.close_connection(
                ErrorCodes.NO_ERROR, last_stream_id=self.h2.highest_inbound_stream_id
            )
        self._close()

    def expire(self) -> None:
        """Idle past the keep-alive timeout, or never started: GOAWAY NO_ERROR and close."""
        self.deadline = 0.0
        if not self.streams:
            self._goodbye()

    def expire_upstream(self) -> None:
        now = self.plane.loop.time()
        for stream in list(self.streams.values()):
            stream.expire_upstream(now)

    def shutdown(self) -> None:
        """Graceful stop: GOAWAY NO_ERROR naming the last stream we take (RFC 9113 §6.8);
        streams under way finish, then the connection closes."""
        if self._going_away:
            return
        self._going_away = True
        if not self.streams:
            self._goodbye()
            return
        # h2's close_connection would also stop the streams under way (its connection state
        # machine is CLOSED after any GOAWAY), so this first GOAWAY is h2's frame type written
        # beside it; h2's own follows when the last stream is done (``forget``).
        self.flush()
        if self.transport is not None:
            last = self.h2.highest_inbound_stream_id
            self.transport.write(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
