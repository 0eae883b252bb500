"""h2c toward endpoints whose Service port says ``appProtocol: kubernetes.io/h2c`` (gRPC).

One HTTP/2 connection per endpoint (prior knowledge, RFC 9113 §3.3) carries many exchanges, one
stream each (``_h2c_stream.H2cStream``), up to the endpoint's SETTINGS_MAX_CONCURRENT_STREAMS;
another connection opens when they are full, and one without streams closes after
``Timeouts.upstream_idle``. A GOAWAY from the endpoint lets the streams it took finish; those
above its last stream id were not processed and are lost (the exchange may try again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError

from kexpose.proxy.dataplane._h2c_stream import H2cStream
from kexpose.proxy.routes import Endpoint
from kexpose.proxy.settings import DataPlaneSettings

__all__ = ["H2cConnection", "H2cPool"]

log = logging.getLogger(__name__)

_CONNECTION_WINDOW: Final = 2**23


class H2cConnection(asyncio.Protocol):
    """One HTTP/2 connection to an endpoint, prior knowledge (RFC 9113 §3.3)."""

    __slots__ = (
        "_flush_due",
        "closed",
        "endpoint",
        "going_away",
        "h2",
        "idle_since",
        "pool",
        "reserved",
        "streams",
        "transport",
    )

    def __init__(self, pool: H2cPool, endpoint: Endpoint) -> None:
        self.pool = pool
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2cStream] = {}
        self.reserved = 0
        """Streams handed out whose HEADERS have not gone yet."""
        self.closed = False
        self.going_away = False
        self.idle_since = pool.loop.time()
        """When the last stream ended (``H2cPool.sweep`` closes connections idle too long)."""
        self._flush_due = False
        config = H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=False,  # only joins cookies (a request's concern)
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            split_outbound_cookies=False,
        )
        self.h2 = H2Connection(config=config)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_CONNECTION_WINDOW - 65_535)
        self.flush()

    @property
    def high_water(self) -> int:
        return self.pool.settings.limits.high_water

    def has_room(self) -> bool:
        if self.closed or self.going_away:
            return False
        limit = self.h2.remote_settings.max_concurrent_streams
        return len(self.streams) + self.reserved < limit

    def new_stream(self) -> H2cStream:
        self.reserved += 1
        return H2cStream(self)

    def opened(self, stream: H2cStream) -> None:
        self.reserved -= 1
        self.streams[stream.stream_id] = stream

    def forget(self, stream: H2cStream) -> None:
        if stream.stream_id:
            self.streams.pop(stream.stream_id, None)
        else:
            self.reserved -= 1
        if not self.streams and not self.reserved:
            self.idle_since = self.pool.loop.time()
            if self.going_away:
                self.close()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as exc:
            self._lost(f"bad HTTP/2 from {self.endpoint[0]}:{self.endpoint[1]}: {exc}")
            return
        streams = self.streams
        for event in events:
            if isinstance(event, DataReceived):
                stream = streams.get(event.stream_id or 0)
                if stream is not None:
                    stream.data(event.data or b"", event.flow_controlled_length or 0)
                elif event.flow_controlled_length:
                    with contextlib.suppress(H2Error):
                        self.h2.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id or 0
                        )
            elif isinstance(event, ResponseReceived):
                stream = streams.get(event.stream_id or 0)
                if stream is not None:
                    ended = event.stream_ended is not None
                    stream.response(list(event.headers or ()), ended=ended)
            elif isinstance(event, TrailersReceived):
                stream = streams.get(event.stream_id or 0)
                if stream is not None:
                    stream.trailers(list(event.headers or ()))
            elif isinstance(event, StreamEnded):
                stream = streams.get(event.stream_id or 0)
                if stream is not None and stream.exchange is not None:
                    stream.ended()
            elif isinstance(event, StreamReset):
                stream = streams.get(event.stream_id or 0)
                if stream is not None:
                    stream.reset(int(event.error_code or 0))
            elif isinstance(event, WindowUpdated | RemoteSettingsChanged):
                sid = getattr(event, "stream_id", 0)
                for stream in [streams[sid]] if sid in streams else list(streams.values()):
                    stream.window_opened()
            elif isinstance(event, ConnectionTerminated):
                # GOAWAY: streams above its last id were not processed (RFC 9113 §6.8).
                self.going_away = True
                last = event.last_stream_id or 0
                for sid, stream in list(streams.items()):
                    if sid > last:
                        del streams[sid]
                        stream.lost("the endpoint is going away (GOAWAY)")
                if not streams:
                    self.close()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        self._lost("connection closed by the endpoint" if exc is None else str(exc))

    def _lost(self, why: str) -> None:
        self.closed = True
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.lost(why)
        if self.transport is not None:
            self.transport.abort()

    def flush_soon(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            self.pool.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_due = False
        out = self.h2.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    def close(self) -> None:
        """GOAWAY NO_ERROR, then close (streams under way are reset by the endpoint's close)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(H2Error):
            self.h2.close_connection()
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        for stream in self.streams.values():
            ex = stream.exchange
            if ex is not None and not stream._paused_client:
                stream._paused_client = True
                ex.client.pause_reading_for_upstream()

    def resume_writing(self) -> None:
        for stream in list(self.streams.values()):
            ex = stream.exchange
            if ex is not None and stream._paused_client:
                stream._paused_client = False
                ex.client.resume_reading_for_upstream()


class H2cPool:
    """h2c connections per endpoint; ``take``/``connect`` hand out a stream, as ``Pool`` hands
    out a connection."""

    __slots__ = ("_connecting", "_conns", "loop", "settings")

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: DataPlaneSettings) -> None:
        self.loop = loop
        self.settings = settings
        self._conns: dict[Endpoint, list[H2cConnection]] = {}
        self._connecting: dict[Endpoint, asyncio.Future[H2cConnection]] = {}

    def take(self, endpoint: Endpoint) -> H2cStream | None:
        for conn in self._conns.get(endpoint, ()):
            if conn.has_room():
                return conn.new_stream()
        return None

    async def connect(self, endpoint: Endpoint) -> H2cStream:
        pending = self._connecting.get(endpoint)
        if pending is not None:
            # Someone is connecting already: its connection most likely has room for us too.
            conn = await asyncio.shield(pending)
            if conn.has_room():
                return conn.new_stream()
        future: asyncio.Future[H2cConnection] = self.loop.create_future()
        self._connecting[endpoint] = future
        try:
            async with asyncio.timeout(self.settings.timeouts.upstream_connect):
                _, conn = await self.loop.create_connection(
                    lambda: H2cConnection(self, endpoint), endpoint[0], endpoint[1]
                )
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: only those waiting on it need it
            raise
        finally:
            if self._connecting.get(endpoint) is future:
                del self._connecting[endpoint]
        future.set_result(conn)
        self._conns.setdefault(endpoint, []).append(conn)
        return conn.new_stream()

    def forget(self, conn: H2cConnection) -> None:
        conns = self._conns.get(conn.endpoint)
        if conns and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._conns[conn.endpoint]

    def sweep(self, now: float) -> None:
        """Close connections without streams for longer than ``Timeouts.upstream_idle``, as
        the HTTP/1.1 pool does with its idle connections."""
        limit = now - self.settings.timeouts.upstream_idle
        for conns in list(self._conns.values()):
            for conn in list(conns):
                if not conn.streams and not conn.reserved and conn.idle_since < limit:
                    self.forget(conn)
                    conn.close()

    def connection_count(self) -> int:
        return sum(len(conns) for conns in self._conns.values())

    def close_all(self) -> None:
        for conns in list(self._conns.values()):
            for conn in list(conns):
                conn.close()
        self._conns.clear()
