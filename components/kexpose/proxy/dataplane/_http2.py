"""HTTP/2 client connections (RFC 9113): the ``h2`` state machine under an asyncio transport.

A connection becomes HTTP/2 by ALPN on the TLS listeners or by the client's connection preface
on plain ones (prior knowledge, RFC 9113 §3.3); ``_downstream`` hands it over. Frames go in and
out through ``h2``; each stream is an ``_http2_stream.Http2Stream``, served as an exchange on the
same route table and filters as HTTP/1.1. A drain (SIGTERM) sends GOAWAY NO_ERROR at once and
lets the streams under way finish.

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
from hyperframe.frame import GoAwayFrame

from kexpose.proxy.dataplane._http2_stream import Http2Stream
from kexpose.proxy.dataplane._peer import peer_of

if TYPE_CHECKING:
    from kexpose.proxy.dataplane._roles import Plane

__all__ = ["PREFACE", "Http2Connection"]

log = logging.getLogger(__name__)

#: The client connection preface (RFC 9113 §3.4).
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#: The connection-level receive window we open at the start: enough for every stream's own
#: window (64 KiB each) to be in flight at once, so one stream whose endpoint is slow (its
#: WINDOW_UPDATEs held back) never stalls the others.
_CONNECTION_WINDOW: Final = 2**23


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
        self.peer, self.peer_bytes, self.forwarded, self.sni = peer_of(transport, self.scheme)
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
            stream._release()

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
        # Paused, the connection reads nothing, so neither a GOAWAY nor the end of the stream
        # can reach it: a client that never reads again must still be let go of, after the
        # keep-alive timeout (``expire``).
        self._stall_deadline()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.streams and not self.transport_closing:
            self.deadline = 0.0
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
        for stream in list(self.streams.values()):
            if stream._out_bytes <= self.plane.settings.limits.high_water:
                stream._release()

    # --- streams ------------------------------------------------------------------------------

    def _request(self, event: RequestReceived) -> None:
        sid = event.stream_id
        assert sid is not None
        if self._going_away:
            # After our GOAWAY: not processed, the client may retry it elsewhere (§6.8).
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        stream = self.streams[sid] = Http2Stream(self, sid)
        if not self._write_paused:
            self.deadline = 0.0  # paused, the stall deadline stands (``pause_writing``)
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
        # A close waits for the write buffer to drain and, on TLS, for the client's
        # close_notify: one that never comes must not keep the connection (``expire``).
        self._stall_deadline()

    @property
    def transport_closing(self) -> bool:
        transport = self.transport
        return transport is not None and transport.is_closing()

    def _stall_deadline(self) -> None:
        if not self.deadline:
            self.deadline = self.plane.loop.time() + self.plane.settings.timeouts.keepalive

    def _goodbye(self) -> None:
        with contextlib.suppress(H2Error):
            self.h2.close_connection(
                ErrorCodes.NO_ERROR, last_stream_id=self.h2.highest_inbound_stream_id
            )
        self._close()

    def expire(self) -> None:
        """Idle past the keep-alive timeout, or never started: GOAWAY NO_ERROR and close. A
        connection stuck as long (its close not finished, or its client reading nothing while
        we wait to write) is cut: nothing more will come of it."""
        self.deadline = 0.0
        if self.transport_closing or self._write_paused:
            self.abort()
        elif not self.streams:
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
